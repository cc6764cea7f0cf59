{{/* Names, labels and the pieces both modes share. */}}

{{- define "defragd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "defragd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "defragd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "defragd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "defragd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "defragd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "defragd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "defragd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "defragd.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Where the Secrets are mounted; the daemon's config and the job's flags name these paths. */}}
{{- define "defragd.tlsDir" -}}/var/run/secrets/defragd/etcd-tls{{- end }}
{{- define "defragd.passwordDir" -}}/var/run/secrets/defragd/etcd-password{{- end }}
{{- define "defragd.tokenDir" -}}/var/run/secrets/defragd/api-token{{- end }}
{{- define "defragd.kubeadmDir" -}}/var/run/secrets/defragd/kubeadm-etcd-pki{{- end }}

{{/* Where the host's Kubernetes CA is mounted for --wait-for-url-cacert (kubeadm mode with waitForUrls). */}}
{{- define "defragd.kubernetesCa" -}}/var/run/secrets/defragd/kubernetes-ca.crt{{- end }}

{{/* The Service's names, which the daemon serves besides IP literals (allowedHosts). */}}
{{- define "defragd.serviceHosts" -}}
{{- $svc := include "defragd.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end }}

{{/*
The daemon's config file: .Values.config plus the keys that depend on the pod. The pod's paths are
set here, in one place; a cluster that names its own cacert/cert/key or user keeps them.
*/}}
{{- define "defragd.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $_ := set $c "listen" "0.0.0.0:9479" -}}
{{- $_ := set $c "store" "/var/lib/defragd/defragd.sqlite" -}}
{{- $_ := set $c "allowedHosts" (concat (include "defragd.serviceHosts" . | fromJsonArray) (.Values.config.allowedHosts | default list) | uniq) -}}
{{- if .Values.apiToken.existingSecret -}}
{{- $_ := set $c "apiTokenFile" (printf "%s/%s" (include "defragd.tokenDir" .) .Values.apiToken.key) -}}
{{- end -}}
{{- $clusters := list -}}
{{- range .Values.config.clusters -}}
{{- $cl := deepCopy . -}}
{{- if and $.Values.etcd.tls.existingSecret (not (or (hasKey $cl "cacert") (hasKey $cl "cert") (hasKey $cl "key"))) -}}
{{- $_ := set $cl "cacert" (printf "%s/ca.crt" (include "defragd.tlsDir" $)) -}}
{{- $_ := set $cl "cert" (printf "%s/tls.crt" (include "defragd.tlsDir" $)) -}}
{{- $_ := set $cl "key" (printf "%s/tls.key" (include "defragd.tlsDir" $)) -}}
{{- end -}}
{{- if and $.Values.etcd.auth.user (not (hasKey $cl "user")) -}}
{{- $_ := set $cl "user" $.Values.etcd.auth.user -}}
{{- $_ := set $cl "passwordFile" (printf "%s/%s" (include "defragd.passwordDir" $) $.Values.etcd.auth.passwordKey) -}}
{{- end -}}
{{- $clusters = append $clusters $cl -}}
{{- end -}}
{{- $_ := set $c "clusters" $clusters -}}
{{- toYaml $c -}}
{{- end }}

{{/* Refusals the schema cannot express, each saying what to set. */}}
{{- define "defragd.validate" -}}
{{- if and .Values.etcd.auth.user (not .Values.etcd.auth.existingSecret) -}}
{{- fail "etcd.auth.user is set without etcd.auth.existingSecret: name the Secret that holds its password" -}}
{{- end -}}
{{- if and .Values.etcd.auth.existingSecret (not .Values.etcd.auth.user) -}}
{{- fail "etcd.auth.existingSecret is set without etcd.auth.user" -}}
{{- end -}}
{{- if and (eq .Values.mode "cronjob") .Values.cronjob.kubeadm.enabled .Values.etcd.tls.existingSecret -}}
{{- fail "cronjob.kubeadm.enabled reads etcd's certificates from the host: leave etcd.tls.existingSecret empty" -}}
{{- end -}}
{{- end }}

{{/* The pod's security context; kubeadm's root-only keys need uid 0 (see values.yaml). */}}
{{- define "defragd.podSecurityContext" -}}
{{- $psc := deepCopy .Values.podSecurityContext -}}
{{- if and (eq .Values.mode "cronjob") .Values.cronjob.kubeadm.enabled -}}
{{- $_ := set $psc "runAsNonRoot" false -}}
{{- $_ := set $psc "runAsUser" 0 -}}
{{- $_ := set $psc "runAsGroup" 0 -}}
{{- $_ := unset $psc "fsGroup" -}}
{{- end -}}
{{- toYaml $psc -}}
{{- end }}

{{/* The etcd client Secrets as volumes (TLS and password), for both modes. */}}
{{- define "defragd.etcdVolumes" -}}
{{- if .Values.etcd.tls.existingSecret }}
- name: etcd-tls
  secret:
    secretName: {{ .Values.etcd.tls.existingSecret }}
    defaultMode: 256
    items:
      - { key: ca.crt, path: ca.crt }
      - { key: tls.crt, path: tls.crt }
      - { key: tls.key, path: tls.key }
{{- end }}
{{- if and .Values.etcd.auth.existingSecret (eq .Values.mode "daemon") }}
- name: etcd-password
  secret:
    secretName: {{ .Values.etcd.auth.existingSecret }}
    defaultMode: 256
    items:
      - key: {{ .Values.etcd.auth.passwordKey }}
        path: {{ .Values.etcd.auth.passwordKey }}
{{- end }}
{{- end }}

{{- define "defragd.etcdVolumeMounts" -}}
{{- if .Values.etcd.tls.existingSecret }}
- name: etcd-tls
  mountPath: {{ include "defragd.tlsDir" . }}
  readOnly: true
{{- end }}
{{- if and .Values.etcd.auth.existingSecret (eq .Values.mode "daemon") }}
- name: etcd-password
  mountPath: {{ include "defragd.passwordDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "defragd.podCommon" -}}
serviceAccountName: {{ include "defragd.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- include "defragd.podSecurityContext" . | nindent 2 }}
{{- end }}
