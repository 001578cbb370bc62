{{/* Whether the operator replicas peer through kopf (more than one replica). */}}
{{- define "cortex.peering" -}}
{{- if gt (int .Values.operator.replicas) 1 }}true{{ end -}}
{{- end -}}
