{{- define "cortex.labels" -}}
app.kubernetes.io/name: cortex-operator
app.kubernetes.io/part-of: cortex
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* keda, hpa or cpu: the value, else keda where KEDA's CRDs are served, else hpa. */}}
{{- define "cortex.autoscaler" -}}
{{- if hasKey .Values "customMetrics" -}}
{{- fail "customMetrics is replaced by autoscaling.autoscaler: hpa (what true meant), cpu (what false meant) or keda" -}}
{{- end -}}
{{- $autoscaler := .Values.autoscaling.autoscaler | default (ternary "keda" "hpa" (.Capabilities.APIVersions.Has "keda.sh/v1alpha1")) -}}
{{- if not (has $autoscaler (list "keda" "hpa" "cpu")) -}}
{{- fail (printf "autoscaling.autoscaler %q is not valid: use keda, hpa or cpu, or leave it empty" $autoscaler) -}}
{{- end -}}
{{- $autoscaler -}}
{{- end -}}

{{/*
The prefix of the objects two releases could both create (cluster-scoped ones, and those in the
watched namespace): the release name when it names cortex already, else <release>-cortex. The
release `cortex` keeps the plain manifests' names (cortex-operator, cortex-user).
*/}}
{{- define "cortex.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}{{ end }}
{{- end -}}

{{- define "cortex.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "cortex.activatorLabels" -}}
app.kubernetes.io/name: cortex-activator
app.kubernetes.io/part-of: cortex
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
