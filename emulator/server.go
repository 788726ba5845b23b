package emulator

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// DefaultListen is where Start and Serve listen when given an empty address:
// loopback, on a free port.
const DefaultListen = "127.0.0.1:0"

// Server is an emulator serving HTTP on a listener of its own.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error // the Serve error, set before done is closed
}

// Start listens on addr (DefaultListen when empty) and serves the emulator
// in a goroutine owned by the returned Server until Close.
func (e *Emulator) Start(addr string) (*Server, error) {
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{srv: e.newHTTPServer(), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Serve listens on addr (DefaultListen when empty) and serves the emulator
// until ctx ends, then shuts down, giving requests in flight up to five
// seconds. It returns nil after a shutdown caused by ctx.
func (e *Emulator) Serve(ctx context.Context, addr string) error {
	s, err := e.Start(addr)
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutCtx); err != nil {
		_ = s.srv.Close() // hanging faults outlive any grace period
	}
	<-s.done
	return s.err
}

func (e *Emulator) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
}

// URL is the base URL of the server, e.g. http://127.0.0.1:38123; the API is
// under URL() + APIPrefix.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server at once, closing every connection (which also ends
// hanging faults), and waits for its goroutine.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if s.err != nil {
		return s.err
	}
	return err
}
