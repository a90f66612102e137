package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// accessLines stops p (SIGTERM, exit 0) and returns the JSON access-log
// lines ("msg":"request") of file.
func accessLines(t *testing.T, p *proc, file string) []map[string]any {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.exitCode(t, 15*time.Second))
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	require.NoError(t, sc.Err())
	return lines
}

func TestAccessLogToFileHasEveryField(t *testing.T) {
	up := textUpstream(t, "hello")
	admin, lis := freeAddr(t), freeAddr(t)
	file := filepath.Join(t.TempDir(), "access.log")
	require.NoError(t, os.WriteFile(file, []byte(`{"msg":"before"}`+"\n"), 0o600)) // appended to, not truncated
	p := runAmbassador(t, admin, oneServiceConfig(admin, lis, "users", hostOf(up.URL), "", ""),
		"-log-format", "json", "-access-log", file)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, "http://"+lis+"/x", strings.NewReader("twelve bytes"))
	require.NoError(t, err)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := newClient(t).Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	lines := accessLines(t, p, file)
	require.Len(t, lines, 1)
	l := lines[0]
	assert.Contains(t, l["remote"], "127.0.0.1:")
	assert.Equal(t, lis, l["host"])
	assert.Equal(t, "listener "+lis, l["route"])
	assert.Equal(t, "users", l["service"])
	assert.Equal(t, hostOf(up.URL), l["endpoint"])
	assert.Equal(t, 200.0, l["status"])
	assert.Equal(t, 1.0, l["attempts"])
	assert.Equal(t, 12.0, l["bytes_in"])
	assert.Equal(t, 5.0, l["bytes_out"])
	assert.IsType(t, 0.0, l["duration_ms"])
	assert.Greater(t, l["duration_ms"], 0.0)
	assert.Equal(t, traceID, l["trace_id"])
	assert.NotContains(t, l, "grpc_status")
	assert.NotContains(t, p.out.String(), `"msg":"request"`, "the access log left the process log")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), `{"msg":"before"}`+"\n"), "the file was truncated")
}

func TestAccessLogGRPCStatus(t *testing.T) {
	up, _, _ := grpcUpstream(t)
	admin, lis := freeAddr(t), freeAddr(t)
	file := filepath.Join(t.TempDir(), "access.log")
	p := runAmbassador(t, admin, oneServiceConfig(admin, lis, "grpc", up, "protocol: h2c", ""),
		"-log-format", "json", "-access-log", file)
	cc := grpcClient(t, lis)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	err = cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{Service: "trailer"}, new(healthpb.HealthCheckResponse))
	require.Equal(t, codes.Aborted, status.Code(err))
	require.NoError(t, cc.Close())

	lines := accessLines(t, p, file)
	require.Len(t, lines, 2)
	byPath := map[any]map[string]any{}
	for _, l := range lines {
		byPath[l["path"]] = l
	}
	require.Contains(t, byPath, "/grpc.health.v1.Health/Check")
	require.Contains(t, byPath, "/test.Test/Do")
	assert.Equal(t, "0", byPath["/grpc.health.v1.Health/Check"]["grpc_status"])
	assert.Equal(t, "10", byPath["/test.Test/Do"]["grpc_status"])
	assert.Equal(t, 200.0, byPath["/test.Test/Do"]["status"])
	assert.Greater(t, byPath["/test.Test/Do"]["bytes_in"], 0.0)
}

func TestAccessLogOff(t *testing.T) {
	up := textUpstream(t, "hello")
	admin, lis := freeAddr(t), freeAddr(t)
	p := runAmbassador(t, admin, oneServiceConfig(admin, lis, "users", hostOf(up.URL), "", ""),
		"-log-format", "json", "-access-log", "off")
	resp, body := get(t, newClient(t), "http://"+lis+"/x")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "hello", body)
	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.exitCode(t, 15*time.Second))
	out := p.out.String()
	assert.Contains(t, out, `"msg":"stopped"`, "the process log is still there")
	assert.NotContains(t, out, `"msg":"request"`)
}

func TestAccessLogBadValueExits2(t *testing.T) {
	admin, lis := freeAddr(t), freeAddr(t)
	config := writeConfig(t, oneServiceConfig(admin, lis, "users", "127.0.0.1:1", "", ""))
	for name, v := range map[string]string{
		"empty":       "",
		"missing dir": filepath.Join(t.TempDir(), "no", "such", "dir", "access.log"),
		"a directory": t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			p := startProc(t, "-config", config, "-access-log", v)
			assert.Equal(t, 2, p.exitCode(t, 15*time.Second))
			assert.Contains(t, p.out.String(), "-access-log")
		})
	}
}
