{{/* Chart name, overridable. */}}
{{- define "yushan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full resource name prefix: <release>-<chart>, or the release when it contains the chart. */}}
{{- define "yushan.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "yushan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "yushan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: yushan
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "api"). */}}
{{- define "yushan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yushan.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "yushan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "yushan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "yushan.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "yushan.secretName" -}}
{{- printf "%s-secrets" (include "yushan.fullname" .) }}
{{- end }}

{{- define "yushan.leaseName" -}}
{{- default (printf "%s-scheduler" (include "yushan.fullname" .)) .Values.scheduler.leaderElection.leaseName }}
{{- end }}

{{/* Restricted pod security context (Pod Security Standards "restricted"). */}}
{{- define "yushan.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "yushan.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
Environment of a process: settings, the database URL, the pod's identity, and the bootstrap
token only where it is needed; call with (dict "root" $ "bootstrapToken" true|false).
*/}}
{{- define "yushan.env" -}}
{{- $values := .root.Values }}
envFrom:
  - configMapRef:
      name: {{ include "yushan.fullname" .root }}
env:
  - name: YUSHAN_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ default (include "yushan.secretName" .root) $values.database.existingSecret }}
        key: {{ ternary $values.database.existingSecretKey "database-url" (ne $values.database.existingSecret "") }}
  {{- if .bootstrapToken }}
  - name: YUSHAN_BOOTSTRAP_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ default (include "yushan.secretName" .root) $values.bootstrapToken.existingSecret }}
        key: {{ ternary $values.bootstrapToken.existingSecretKey "bootstrap-token" (ne $values.bootstrapToken.existingSecret "") }}
  {{- end }}
  {{- if $values.metricsToken.existingSecret }}
  - name: YUSHAN_METRICS_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ $values.metricsToken.existingSecret }}
        key: {{ $values.metricsToken.existingSecretKey }}
  {{- end }}
  - name: YUSHAN_POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: YUSHAN_POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
{{- end }}

{{/* Soft anti-affinity spreading a component's replicas over nodes. */}}
{{- define "yushan.spreadAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "yushan.selectorLabels" . | nindent 12 }}
{{- end }}

{{/* Peers allowed to scrape /metrics: networkPolicy.metricsFrom, or any pod in any namespace. */}}
{{- define "yushan.metricsPeers" -}}
{{- if .Values.networkPolicy.metricsFrom }}
{{- toYaml .Values.networkPolicy.metricsFrom }}
{{- else }}
- namespaceSelector: {}
{{- end }}
{{- end }}
