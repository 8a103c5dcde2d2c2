{{/*
Labels on every object's metadata. The kustomize base sets part-of, name and component; Helm adds
the release's own. Selectors and pod templates keep the base's labels only, so a chart upgrade
never changes a selector (immutable) or restarts a pod by itself.
*/}}
{{- define "dfs-injector.labels" -}}
app.kubernetes.io/part-of: dfs-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "dfs-injector.webhookSelector" -}}
app.kubernetes.io/name: dfs-injector
app.kubernetes.io/component: webhook
{{- end }}

{{- define "dfs-injector.mounterSelector" -}}
app.kubernetes.io/name: dfs-mounter
app.kubernetes.io/component: mounter
{{- end }}

{{- define "dfs-injector.webhookLabels" -}}
{{ include "dfs-injector.webhookSelector" . }}
{{ include "dfs-injector.labels" . }}
{{- end }}

{{- define "dfs-injector.mounterLabels" -}}
{{ include "dfs-injector.mounterSelector" . }}
{{ include "dfs-injector.labels" . }}
{{- end }}

{{- define "dfs-injector.image" -}}
{{ printf "%s:%s" .repository .tag }}
{{- end }}

{{- define "dfs-injector.selfManagedCerts" -}}
{{- if eq .Values.certificates.mode "self-managed" }}true{{ end }}
{{- end }}

{{/*
The mounter script's ConfigMap name, suffixed with the same content hash kustomize's
configMapGenerator computes (sha256 of {"data":…,"kind":"ConfigMap","name":""} as Go's
json.Marshal writes it, first 10 hex digits with 0,1,3,a,e swapped for g,h,k,m,t): the same name
as `kubectl apply -k`, and a changed script still rolls the DaemonSet while nothing else does.
*/}}
{{- define "dfs-injector.mounterScriptConfigMap" -}}
{{- $data := dict "dfs-mounter.sh" (.Files.Get "files/dfs-mounter.sh") -}}
{{- $hash := dict "data" $data "kind" "ConfigMap" "name" "" | toJson | sha256sum | trunc 10 -}}
{{- $hash = $hash | replace "0" "g" | replace "1" "h" | replace "3" "k" | replace "a" "m" | replace "e" "t" -}}
{{ printf "dfs-mounter-script-%s" $hash }}
{{- end }}

{{/* The namespaceSelector shared by the four webhook entries; $ is the root context. */}}
{{- define "dfs-injector.namespaceSelectorBase" -}}
- key: dfs-injector.io/injection
  operator: In
  values: [enabled]
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ concat .Values.webhook.excludeNamespaces (list .Release.Namespace) | uniq | toJson }}
{{- end }}
