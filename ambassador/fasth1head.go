package ambassador

import (
	"bytes"
	"net/http"
	"net/textproto"
	"strconv"
)

// parsePlainHead reads the response head at the front of buf when it is a
// plain one: an HTTP/1.1 status line with a final status other than 204 and
// 304, CRLF line ends, every header once, a single Content-Length, and none
// of the headers that change framing or connection handling
// (Transfer-Encoding, Connection, Trailer, Pragma). It returns the response
// without a body and the length of the head. For anything else ok is false:
// net/http's ReadResponse reads that head instead, so every unusual or
// malformed response keeps net/http's handling.
//
// It builds what http.ReadResponse builds for such a head (a test compares
// them on fuzzed input) with fewer allocations: the head becomes one string
// that the keys and values are sliced from, and the value slices share one
// backing array.
func parsePlainHead(buf []byte, req *http.Request) (resp *http.Response, n int, ok bool) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, 0, false
	}
	head := string(buf[:end+2]) // every line with its CRLF
	nl := indexCRLF(head, 0)
	line := head[:nl]
	// "HTTP/1.1 200" or "HTTP/1.1 200 reason"
	if len(line) < 12 || line[:9] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return nil, 0, false
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, 0, false
	}
	if !validFieldValue(line[12:]) {
		return nil, 0, false
	}

	lines := 0
	for i := nl + 2; i < len(head); i = indexCRLF(head, i) + 2 {
		lines++
	}
	values := make([]string, lines)
	h := make(http.Header, lines)
	cl := int64(-1)
	for i, pos := 0, nl+2; pos < len(head); i++ {
		e := indexCRLF(head, pos)
		field := head[pos:e]
		pos = e + 2
		colon := -1
		for j := 0; j < len(field); j++ {
			if field[j] == ':' {
				colon = j
				break
			}
		}
		if colon <= 0 {
			return nil, 0, false // no name, no colon, or a continuation line
		}
		key, v := field[:colon], trimOWS(field[colon+1:])
		if !validFieldName(key) || !validFieldValue(v) {
			return nil, 0, false
		}
		if !isCanonical(key) {
			key = textproto.CanonicalMIMEHeaderKey(key)
		}
		switch key {
		case "Transfer-Encoding", "Connection", "Trailer", "Pragma":
			return nil, 0, false
		case "Content-Length":
			if len(v) == 0 || len(v) > 18 {
				return nil, 0, false
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || v[0] == '+' || v[0] == '-' {
				return nil, 0, false
			}
			cl = n
		}
		if _, dup := h[key]; dup {
			return nil, 0, false
		}
		values[i] = v
		h[key] = values[i : i+1 : i+1]
	}
	if cl < 0 {
		return nil, 0, false // read until close: net/http's
	}
	resp = &http.Response{
		Status:        line[9:],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: cl,
		Request:       req,
	}
	return resp, end + 4, true
}

func indexCRLF(s string, from int) int {
	for i := from; i+1 < len(s); i++ {
		if s[i] == '\r' && s[i+1] == '\n' {
			return i
		}
	}
	return len(s) // not reached for a head that ends in CRLF
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validFieldName reports whether s is an RFC 9110 token.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '!', c == '#', c == '$', c == '%', c == '&', c == '\'', c == '*',
			c == '+', c == '.', c == '^', c == '_', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return true
}

// validFieldValue rejects control bytes other than horizontal tab, and
// bytes outside ASCII: those heads are left to net/http.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// isCanonical reports whether a token is already in canonical MIME header
// form: an upper-case letter (or non-letter) after each hyphen and at the
// start, lower case elsewhere.
func isCanonical(s string) bool {
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}
