/** Rules (CEL) that decide per member whether a defrag is worth it. */
export { compileRule, ruleVariables, RULE_NAMES } from './rule.js';
