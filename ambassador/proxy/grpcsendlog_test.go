package proxy_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// The first attempt of a native call gets the caller's messages from the
// pump itself (no sender goroutine): every message arrives, in order, with
// or without a retry layer, for a client stream sent ahead of any answer
// (large enough to need flow-control window updates) and for a ping-pong
// stream whose every message waits for the previous answer.
func TestNativeGRPCFirstAttemptGetsEveryMessage(t *testing.T) {
	for name, extra := range map[string]string{
		"no retry": "protocol: h2c",
		"retry":    "protocol: h2c\nretry: {}",
	} {
		t.Run(name, func(t *testing.T) {
			u := &rawUpstreamSvc{}
			addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, extra, "")
			cc := rawClient(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			s, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/t.T/ClientStream")
			require.NoError(t, err)
			var want strings.Builder
			chunk := strings.Repeat("x", 4096)
			for i := range 100 { // 400 KiB: past the initial windows
				in := []byte(fmt.Sprintf("%03d%s", i, chunk))
				want.Write(in)
				require.NoError(t, s.SendMsg(&in))
			}
			require.NoError(t, s.CloseSend())
			var out []byte
			require.NoError(t, s.RecvMsg(&out))
			assert.True(t, want.String() == string(out), "every message, in order (%d of %d bytes)", len(out), want.Len())
			assert.ErrorIs(t, s.RecvMsg(&out), io.EOF)

			b, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/t.T/Bidi")
			require.NoError(t, err)
			for i := range 20 {
				in := []byte(fmt.Sprintf("ping %d", i))
				require.NoError(t, b.SendMsg(&in))
				var got []byte
				require.NoError(t, b.RecvMsg(&got))
				assert.Equal(t, fmt.Sprintf("PING %d", i), string(got))
			}
			require.NoError(t, b.CloseSend())
			var end []byte
			assert.ErrorIs(t, b.RecvMsg(&end), io.EOF)
			assert.Equal(t, int64(2), u.calls.Load(), "one attempt each")
		})
	}
}
