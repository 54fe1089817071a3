{{/* Names. */}}
{{- define "archipelago.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "archipelago.fullname" -}}
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

{{/* Labels every object carries. */}}
{{- define "archipelago.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "archipelago.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: archipelago
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "serve"). */}}
{{- define "archipelago.selectorLabels" -}}
app.kubernetes.io/name: {{ include "archipelago.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "archipelago.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "archipelago.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "archipelago.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the database URL, the master key and the scrape token. */}}
{{- define "archipelago.secretName" -}}
{{- if and .Values.secret.existingSecret .Values.secret.create }}
{{- fail "secret.existingSecret and secret.create are both set: keep one (existingSecret for a real install)" }}
{{- end }}
{{- default (include "archipelago.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* ARCHIPELAGO_PUBLIC_URL: publicURL, or derived from the first ingress host. */}}
{{- define "archipelago.publicURL" -}}
{{- if .Values.publicURL }}
{{- .Values.publicURL }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- if .Values.ingress.tls }}
{{- printf "https://%s" $host }}
{{- else }}
{{- printf "http://%s" $host }}
{{- end }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT from a memory limit and a percentage: (dict "limit" "1Gi" "percent" 50) → "512MiB".
Kubernetes quantities written as an integer with Ki, Mi, Gi, Ti (or k, M, G, T, or plain bytes).
Empty when there is no limit (the binary's own default then applies).
*/}}
{{- define "archipelago.goMemLimit" -}}
{{- $limit := "" }}
{{- if kindIs "float64" .limit }}
{{- $limit = printf "%.0f" .limit }}
{{- else if .limit }}
{{- $limit = toString .limit }}
{{- end }}
{{- if $limit }}
{{- if not (regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $limit) }}
{{- fail (printf "memory limit %q: write it as an integer with Ki, Mi, Gi or Ti (GOMEMLIMIT is derived from it)" $limit) }}
{{- end }}
{{- $n := regexFind "^[0-9]+" $limit | int64 }}
{{- $unit := regexFind "[A-Za-z]+$" $limit }}
{{- $mult := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- $bytes := mul $n (get $mult $unit) }}
{{- $pct := int64 .percent }}
{{- if or (lt $pct 10) (gt $pct 95) }}
{{- fail (printf "goMemLimitPercent %d: choose between 10 and 95" $pct) }}
{{- end }}
{{- printf "%dMiB" (div (div (mul $bytes $pct) 100) 1048576) }}
{{- end }}
{{- end }}

{{/* Volumes of serve and worker pods: the secret files and the scratch space. */}}
{{- define "archipelago.volumes" -}}
- name: secrets
  secret:
    secretName: {{ include "archipelago.secretName" . }}
    defaultMode: 288 # 0440: readable by the pods' group (fsGroup)
    items:
      - key: {{ required "secret.keys.databaseURL is required" .Values.secret.keys.databaseURL }}
        path: database-url
      - key: {{ required "secret.keys.masterKey is required" .Values.secret.keys.masterKey }}
        path: master-key
      {{- if .Values.secret.keys.metricsToken }}
      - key: {{ .Values.secret.keys.metricsToken }}
        path: metrics-token
      {{- end }}
{{- if .Values.oidc.enabled }}
- name: oidc
  secret:
    secretName: {{ required "oidc.existingSecret is required when oidc.enabled" .Values.oidc.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ .Values.oidc.clientSecretKey }}
        path: client-secret
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ required "scratch.sizeLimit is required: an unbounded scratch can fill the node" .Values.scratch.sizeLimit }}
    {{- with .Values.scratch.medium }}
    medium: {{ . }}
    {{- end }}
{{- end }}

{{- define "archipelago.volumeMounts" -}}
- name: secrets
  mountPath: /etc/archipelago/secrets
  readOnly: true
{{- if .Values.oidc.enabled }}
- name: oidc
  mountPath: /etc/archipelago/oidc
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment of serve and worker containers: (dict "root" $ "runWorkers" true "restoreWorkers" 2
"resources" …  "percent" 50). The rest comes from the ConfigMap (envFrom).
*/}}
{{- define "archipelago.env" -}}
{{- $v := .root.Values -}}
- name: ARCHIPELAGO_DATABASE_URL_FILE
  value: /etc/archipelago/secrets/database-url
- name: ARCHIPELAGO_MASTER_KEY_FILE
  value: /etc/archipelago/secrets/master-key
{{- if $v.secret.keys.metricsToken }}
- name: ARCHIPELAGO_METRICS_TOKEN_FILE
  value: /etc/archipelago/secrets/metrics-token
{{- end }}
{{- if $v.oidc.enabled }}
- name: ARCHIPELAGO_OIDC_ISSUER
  value: {{ required "oidc.issuer is required when oidc.enabled" $v.oidc.issuer | quote }}
- name: ARCHIPELAGO_OIDC_CLIENT_ID
  value: {{ required "oidc.clientID is required when oidc.enabled" $v.oidc.clientID | quote }}
- name: ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE
  value: /etc/archipelago/oidc/client-secret
{{- end }}
- name: ARCHIPELAGO_RUN_WORKERS
  value: {{ .runWorkers | quote }}
- name: ARCHIPELAGO_RESTORE_WORKERS
  value: {{ .restoreWorkers | quote }}
{{- $gml := include "archipelago.goMemLimit" (dict "limit" ((.resources).limits).memory "percent" .percent) }}
{{- if $gml }}
- name: GOMEMLIMIT
  value: {{ $gml | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The checksums that roll the pods when their configuration changes. */}}
{{- define "archipelago.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if .Values.secret.create }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}
