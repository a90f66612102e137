package ambassador

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/outbound-go/outbound/internal/boundedfile"
	"github.com/outbound-go/outbound/internal/filewatch"
)

// tlsSource holds a service's TLS material behind an atomic pointer and
// reloads it when the files change on disk. A goroutine owned by the source
// follows the files by name (internal/filewatch: their directories are
// watched, a burst of events is one reload 100ms after the last, and the
// files are polled once per second when they cannot be watched); Close
// stops it. A bad new file is logged and the previous material stays in
// use.
type tlsSource struct {
	cfg    TLSConfig
	logger *slog.Logger
	cur    atomic.Pointer[tlsMaterial]

	lastErr string // last logged reload error, to log each distinct one once

	w    *filewatch.Watcher // nil when no file is configured
	stop chan struct{}
	wg   sync.WaitGroup
}

type tlsMaterial struct {
	roots                  *x509.CertPool // nil = system roots
	cert                   *tls.Certificate
	caPEM, certPEM, keyPEM []byte
}

func newTLSSource(c TLSConfig, logger *slog.Logger) (*tlsSource, error) {
	s := &tlsSource{cfg: c, logger: logger, stop: make(chan struct{})}
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	files := s.files()
	if len(files) == 0 {
		return s, nil
	}
	w, err := filewatch.New(files, filewatch.Options{})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s.w = w
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

func (s *tlsSource) files() []string {
	var fs []string
	for _, f := range []string{s.cfg.CAFile, s.cfg.CertFile, s.cfg.KeyFile} {
		if f != "" {
			fs = append(fs, f)
		}
	}
	return fs
}

func (s *tlsSource) load() (*tlsMaterial, error) {
	var errs []error
	m := readTLSMaterial(s.cfg, func(key string, err error) {
		errs = append(errs, fmt.Errorf("tls.%s: %w", key, err))
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// MaxTLSFileSize bounds each of a service's TLS files (ca_file, cert_file,
// key_file): a CA bundle or a certificate chain is a few KiB, so a larger
// file is a mistake (or /dev/zero) and is refused before it fills memory.
const MaxTLSFileSize = 1 << 20

// readTLSMaterial reads and parses the files of c as start-up does (regular
// files only, each at most MaxTLSFileSize) and calls bad with the key under
// tls ("ca_file", "cert_file", "key_file") of every file at fault. The
// material is nil when bad was called. Config checks and tlsSource share
// it, so -check refuses exactly what start-up refuses.
func readTLSMaterial(c TLSConfig, bad func(key string, err error)) *tlsMaterial {
	m := &tlsMaterial{}
	ok := true
	fail := func(key string, err error) {
		ok = false
		bad(key, err)
	}
	if c.CAFile != "" {
		var err error
		if m.caPEM, err = boundedfile.Read(c.CAFile, MaxTLSFileSize); err != nil {
			fail("ca_file", err)
		} else if m.roots = x509.NewCertPool(); !m.roots.AppendCertsFromPEM(m.caPEM) {
			fail("ca_file", fmt.Errorf("%s holds no PEM certificate", c.CAFile))
		}
	}
	if c.CertFile != "" && c.KeyFile != "" {
		m.certPEM = readPEM(c.CertFile, "cert_file", "CERTIFICATE", fail)
		m.keyPEM = readPEM(c.KeyFile, "key_file", "PRIVATE KEY", fail)
		if m.certPEM != nil && m.keyPEM != nil {
			cert, err := tls.X509KeyPair(m.certPEM, m.keyPEM)
			if err != nil {
				fail("cert_file", fmt.Errorf("%s with key_file %s: %w", c.CertFile, c.KeyFile, err))
			} else {
				m.cert = &cert
			}
		}
	}
	if !ok {
		return nil
	}
	return m
}

// readPEM reads path and checks that it holds a PEM block whose type ends
// with want ("CERTIFICATE", "PRIVATE KEY"); it reports a failure to fail
// under key and returns nil.
func readPEM(path, key, want string, fail func(string, error)) []byte {
	data, err := boundedfile.Read(path, MaxTLSFileSize)
	if err != nil {
		fail(key, err)
		return nil
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			fail(key, fmt.Errorf("%s holds no PEM %s", path, strings.ToLower(want)))
			return nil
		}
		if strings.HasSuffix(b.Type, want) {
			return data
		}
	}
}

// reload re-reads the files and swaps them in when they changed and parse.
func (s *tlsSource) reload() {
	m, err := s.load()
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.logger.Error("ambassador: TLS files not reloaded; the previous certificates stay in use", "err", err)
		}
		return
	}
	s.lastErr = ""
	old := s.cur.Load()
	if bytes.Equal(old.caPEM, m.caPEM) && bytes.Equal(old.certPEM, m.certPEM) && bytes.Equal(old.keyPEM, m.keyPEM) {
		return
	}
	s.cur.Store(m)
	s.logger.Info("ambassador: TLS files reloaded", "ca_file", s.cfg.CAFile, "cert_file", s.cfg.CertFile)
}

// watch reloads the files on every change the watcher reports (reload
// compares contents, so a change that is not one costs a few reads).
func (s *tlsSource) watch() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.w.Changes():
			s.reload()
		case err := <-s.w.Errors():
			s.logger.Warn("ambassador: watching TLS files", "err", err)
		}
	}
}

// clientConfig returns a client tls.Config with the current material.
func (s *tlsSource) clientConfig(host string, alpn []string) *tls.Config {
	m := s.cur.Load()
	cfg := &tls.Config{
		RootCAs:    m.roots,
		ServerName: s.cfg.ServerName,
		NextProtos: alpn,
		MinVersion: tls.VersionTLS12,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if m.cert != nil {
		cert := m.cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

func (s *tlsSource) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	s.wg.Wait()
	if s.w != nil {
		return s.w.Close()
	}
	return nil
}
