{{- define "proofpod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{/* At most 53 characters: the scheduler labels its Jobs with it (pod.release). */}}
{{- define "proofpod.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- else if contains (include "proofpod.name" .) .Release.Name -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "proofpod.name" .) | trunc 53 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "proofpod.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "proofpod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "proofpod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "proofpod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end -}}

{{- define "proofpod.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "proofpod.taskImage" -}}
{{- default (printf "proofpod/task:%s" (default .Chart.AppVersion .Values.image.tag)) .Values.task.image -}}
{{- end -}}

{{- define "proofpod.serviceAccountName" -}}
{{- if .Values.serviceAccount.name -}}
{{- .Values.serviceAccount.name -}}
{{- else if .Values.rbac.create -}}
{{- include "proofpod.fullname" . -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{- define "proofpod.taskServiceAccountName" -}}
{{- default (printf "%s-task" (include "proofpod.fullname" .)) .Values.task.serviceAccount.name -}}
{{- end -}}

{{- define "proofpod.ownerName" -}}
{{- printf "%s-owner" (include "proofpod.fullname" .) -}}
{{- end -}}

{{- define "proofpod.databaseSecret" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "%s-postgresql" (include "proofpod.fullname" .) -}}
{{- else -}}
{{- default (printf "%s-database" (include "proofpod.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "proofpod.databaseSecretKey" -}}
{{- if .Values.postgresql.enabled -}}url{{- else -}}{{ .Values.database.existingSecretKey }}{{- end -}}
{{- end -}}

{{- define "proofpod.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "proofpod.fullname" .)) .Values.adminToken.existingSecret -}}
{{- end -}}

{{- define "proofpod.publicUrl" -}}
{{- default (printf "http://%s.%s.svc:%d" (include "proofpod.fullname" .) .Release.Namespace (int .Values.service.port)) .Values.scheduler.publicUrl -}}
{{- end -}}

{{/* The scheduler's configuration file (SPEC: config.ts); extraConfig wins over what is derived. */}}
{{- define "proofpod.config" -}}
{{- $config := dict
  "host" "0.0.0.0"
  "port" (int .Values.scheduler.port)
  "home" "/var/lib/proofpod"
  "logLevel" .Values.scheduler.logLevel
  "substrate" .Values.substrate
  "publicUrl" (include "proofpod.publicUrl" .)
  "adminTokenFile" "/etc/proofpod/admin/token"
  "bootstrapAdminToken" false
-}}
{{- $pod := dict
  "release" (include "proofpod.fullname" .)
  "taskImage" (include "proofpod.taskImage" .)
  "taskServiceAccount" (include "proofpod.taskServiceAccountName" .)
  "runAsUser" (int .Values.task.runAsUser)
  "maxSourceBytes" (int64 .Values.task.maxSourceBytes)
  "imagePullPolicy" .Values.task.imagePullPolicy
-}}
{{- $_ := set $config "pod" $pod -}}
{{- if eq .Values.substrate "kubernetes" -}}
{{- $owner := dict "apiVersion" "v1" "kind" "ConfigMap" "name" (include "proofpod.ownerName" .) -}}
{{- $_ := set $config "kubernetes" (dict "namespace" .Release.Namespace "owner" $owner "ttlSecondsAfterFinished" (int .Values.task.ttlSecondsAfterFinished)) -}}
{{- end -}}
{{- if .Values.lanes }}{{ $_ := set $config "lanes" .Values.lanes }}{{ end -}}
{{- if .Values.provers }}{{ $_ := set $config "provers" .Values.provers }}{{ end -}}
{{- if .Values.promotion }}{{ $_ := set $config "promotion" .Values.promotion }}{{ end -}}
{{- if .Values.quotas }}{{ $_ := set $config "quotas" .Values.quotas }}{{ end -}}
{{- mustMergeOverwrite $config (deepCopy .Values.scheduler.extraConfig) | toPrettyJson -}}
{{- end -}}
