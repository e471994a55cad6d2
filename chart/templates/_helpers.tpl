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

{{- define "proofpod.signingKeySecret" -}}
{{- default (printf "%s-signing-key" (include "proofpod.fullname" .)) .Values.signingKey.existingSecret -}}
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
  "attestation" (dict "signingKeyFile" "/etc/proofpod/signing/key.pem")
-}}
{{- $pod := dict
  "release" (include "proofpod.fullname" .)
  "taskImage" (include "proofpod.taskImage" .)
  "taskServiceAccount" (include "proofpod.taskServiceAccountName" .)
  "runAsUser" (int .Values.task.runAsUser)
  "buildRunAsUser" (int .Values.task.buildRunAsUser)
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

{{/*
The network bits of a CIDR (values.schema.json has checked its form) as "<family>:<bits>", e.g.
"4:00001010" for 10.0.0.0/8 and "6:" for ::/0. B lies strictly inside A when B's string is longer
and starts with A's.
*/}}
{{- define "proofpod.cidrBits" -}}
{{- $parts := splitList "/" (lower .) -}}
{{- $address := first $parts -}}
{{- $prefix := atoi (last $parts) -}}
{{- $bits := "" -}}
{{- if contains ":" $address -}}
{{- $hex := dict "0" "0000" "1" "0001" "2" "0010" "3" "0011" "4" "0100" "5" "0101" "6" "0110" "7" "0111" "8" "1000" "9" "1001" "a" "1010" "b" "1011" "c" "1100" "d" "1101" "e" "1110" "f" "1111" -}}
{{- $halves := splitList "::" $address -}}
{{- $head := list -}}{{- if first $halves -}}{{- $head = splitList ":" (first $halves) -}}{{- end -}}
{{- $tail := list -}}{{- if and (eq (len $halves) 2) (last $halves) -}}{{- $tail = splitList ":" (last $halves) -}}{{- end -}}
{{- $groups := $head -}}
{{- range until (int (sub 8 (add (len $head) (len $tail)))) -}}{{- $groups = append $groups "0" -}}{{- end -}}
{{- $groups = concat $groups $tail -}}
{{- range $groups -}}
{{- range splitList "" (printf "%s%s" (repeat (int (sub 4 (len .))) "0") .) -}}{{- $bits = printf "%s%s" $bits (get $hex .) -}}{{- end -}}
{{- end -}}
{{- printf "6:%s" (trunc $prefix $bits) -}}
{{- else -}}
{{- range splitList "." $address -}}{{- $bits = printf "%s%08b" $bits (atoi .) -}}{{- end -}}
{{- printf "4:%s" (trunc $prefix $bits) -}}
{{- end -}}
{{- end -}}

{{/*
The ipBlock peers of the task policy's source rule: one per networkPolicy.sourceCIDRs entry, each
excepting the sourceExceptCIDRs that lie strictly inside it (the API server refuses any other
except). A source CIDR inside or equal to an except is the operator's explicit allowance and stays
whole: that is how an internal git server is let through.
*/}}
{{- define "proofpod.sourcePeers" -}}
{{- $excepts := .Values.networkPolicy.sourceExceptCIDRs | default list -}}
{{- range .Values.networkPolicy.sourceCIDRs }}
{{- $cidr := include "proofpod.cidrBits" . -}}
{{- $inside := list -}}
{{- range $excepts -}}
{{- $except := include "proofpod.cidrBits" . -}}
{{- if and (hasPrefix $cidr $except) (gt (len $except) (len $cidr)) -}}{{- $inside = append $inside . -}}{{- end -}}
{{- end }}
- ipBlock:
    cidr: {{ . | quote }}
    {{- with $inside }}
    except:
      {{- range . }}
      - {{ . | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}
