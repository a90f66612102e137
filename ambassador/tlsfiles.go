package ambassador

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// tlsPollInterval is how often the files are checked when fsnotify is not
// available.
const tlsPollInterval = time.Second

// tlsSource holds a service's TLS material behind an atomic pointer and
// reloads it when the files change on disk. A goroutine owned by the source
// watches the files' directories (fsnotify; polling once per second when
// that fails); Close stops it. A bad new file is logged and the previous
// material stays in use.
type tlsSource struct {
	cfg    TLSConfig
	logger *slog.Logger
	cur    atomic.Pointer[tlsMaterial]

	lastErr string // last logged reload error, to log each distinct one once

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
	w, err := fsnotify.NewWatcher()
	if err == nil {
		dirs := map[string]bool{}
		for _, f := range files {
			dir := filepath.Dir(f)
			if !dirs[dir] {
				dirs[dir] = true
				if aerr := w.Add(dir); aerr != nil && err == nil {
					err = aerr
				}
			}
		}
		if err != nil {
			_ = w.Close()
		}
	}
	s.wg.Add(1)
	if err != nil {
		logger.Warn("ambassador: cannot watch TLS files; polling them instead", "err", err)
		go s.poll()
	} else {
		go s.watch(w)
	}
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
	m := &tlsMaterial{}
	var err error
	if s.cfg.CAFile != "" {
		if m.caPEM, err = os.ReadFile(s.cfg.CAFile); err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		m.roots = x509.NewCertPool()
		if !m.roots.AppendCertsFromPEM(m.caPEM) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", s.cfg.CAFile)
		}
	}
	if s.cfg.CertFile != "" {
		if m.certPEM, err = os.ReadFile(s.cfg.CertFile); err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		if m.keyPEM, err = os.ReadFile(s.cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("tls.key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(m.certPEM, m.keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		m.cert = &cert
	}
	return m, nil
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

func (s *tlsSource) watch(w *fsnotify.Watcher) {
	defer s.wg.Done()
	defer w.Close()
	for {
		select {
		case <-s.stop:
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			// Any change in a watched directory may be ours (editors and
			// Kubernetes secrets swap files by rename); reload compares
			// contents, so unrelated events cost a few reads.
			s.reload()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.logger.Warn("ambassador: watching TLS files", "err", err)
		}
	}
}

func (s *tlsSource) poll() {
	defer s.wg.Done()
	t := time.NewTicker(tlsPollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.reload()
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
	return nil
}
