/** Member and cluster IDs travel as decimal uint64 strings; defragd shows and keeps them in hex, like etcdctl. */
export function toHexId(decimal: string | number | bigint): string {
  return BigInt(decimal).toString(16);
}

export function toDecimalId(hex: string): string {
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) throw new Error(`not a hex member ID: ${hex}`);
  return BigInt(`0x${hex}`).toString(10);
}
