// The webhook a Kubernetes engineer would write instead of dfs-injector, for the benchmark only:
// controller-runtime's webhook server and admission.Handler, the pod decoded into corev1.Pod,
// the same injection for a consumer pod (the DFS hostPath volume, a read-only HostToContainer
// mount in every container, the status annotation), PatchResponseFromRaw for the JSON patch,
// HTTP/2 on, and one JSON log line per request. Test infrastructure: never part of the product.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	roleLabel   = "dfs-injector.io/role"
	statusKey   = "dfs-injector.io/status"
	volumeName  = "dfs-injector-dfs"
	hostPath    = "/mnt/decypharr-dfs"
	mountPath   = "/mnt/dfs"
	configHash  = "e6abc48a1d8bb1ea"
	peerVersion = "0.1.0"
)

type injector struct {
	decoder admission.Decoder
	log     *slog.Logger
}

type status struct {
	Role           string   `json:"role"`
	Volumes        []string `json:"volumes"`
	Mounts         []string `json:"mounts"`
	Containers     []string `json:"containers"`
	InitContainers []string `json:"initContainers"`
	ConfigHash     string   `json:"configHash"`
	Version        string   `json:"version"`
}

func (i *injector) Handle(_ context.Context, req admission.Request) admission.Response {
	start := time.Now()
	pod := &corev1.Pod{}
	if err := i.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	outcome := "skipped"
	resp := admission.Allowed("not a consumer")
	if pod.Labels[roleLabel] == "consumer" {
		hostPathType := corev1.HostPathDirectory
		propagation := corev1.MountPropagationHostToContainer
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         volumeName,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostPath, Type: &hostPathType}},
		})
		var mounts []string
		for c := range pod.Spec.Containers {
			pod.Spec.Containers[c].VolumeMounts = append(pod.Spec.Containers[c].VolumeMounts, corev1.VolumeMount{
				Name: volumeName, MountPath: mountPath, ReadOnly: true, MountPropagation: &propagation,
			})
			mounts = append(mounts, pod.Spec.Containers[c].Name+":"+mountPath)
		}
		s, _ := json.Marshal(status{Role: "consumer", Volumes: []string{volumeName}, Mounts: mounts, Containers: []string{}, InitContainers: []string{}, ConfigHash: configHash, Version: peerVersion})
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[statusKey] = string(s)
		marshaled, err := json.Marshal(pod)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		resp = admission.PatchResponseFromRaw(req.Object.Raw, marshaled)
		resp.AuditAnnotations = map[string]string{"role": "consumer", "injected": "volumes=" + volumeName + " mounts=" + strings.Join(mounts, ",")}
		outcome = "injected"
	}
	i.log.Info("admission", "path", "/mutate", "status", 200, "uid", string(req.UID), "namespace", req.Namespace, "pod", pod.GenerateName+pod.Name,
		"role", pod.Labels[roleLabel], "outcome", outcome, "dryRun", req.DryRun != nil && *req.DryRun, "durationMs", float64(time.Since(start).Microseconds())/1000)
	return resp
}

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8443, "HTTPS port")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	server := webhook.NewServer(webhook.Options{
		Host:    *host,
		Port:    *port,
		CertDir: *certDir,
		// HTTP/2 with HTTP/1.1 fallback, as the API server and h2load --h1 use them.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"h2", "http/1.1"} }},
	})
	server.Register("/mutate", &webhook.Admission{Handler: &injector{decoder: admission.NewDecoder(runtime.NewScheme()), log: logger}})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := server.Start(ctx); err != nil {
		logger.Error("server stopped", "err", err)
		os.Exit(1)
	}
}
