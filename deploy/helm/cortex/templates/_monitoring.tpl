{{- /* "true" when the Prometheus Operator's objects are rendered: enabled, and the cluster
serves monitoring.coreos.com/v1 or force is set; else empty. */ -}}
{{- define "cortex.prometheusOperator" -}}
{{- $values := .Values.monitoring.prometheusOperator -}}
{{- if and $values.enabled (or $values.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
true
{{- end -}}
{{- end -}}

{{- define "cortex.monitoringLabels" -}}
{{ include "cortex.labels" . }}
{{- with .Values.monitoring.prometheusOperator.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
