// Package yookassatest is an emulator of YooKassa's payment API for tests:
// an httptest server with the real JSON shapes, basic auth, the
// Idempotence-Key rule, payments that the test moves to succeeded or
// canceled (as the customer's bank would), refunds, and a way to post
// notifications to the bot's listener.
package yookassatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/valex-ai/valex/yookassa"
)

// Server is the emulator.
type Server struct {
	ShopID, SecretKey string

	srv *httptest.Server

	mu       sync.Mutex
	next     int
	payments map[string]*yookassa.Payment
	byKey    map[string]string // Idempotence-Key → payment or refund id
	requests []Request
	refunds  map[string]yookassa.Refund
}

// Request is a create-payment call as it arrived.
type Request struct {
	Key  string
	Body yookassa.PaymentRequest
}

// New starts an emulator for shop id and secret key.
func New(shopID, secretKey string) *Server {
	s := &Server{ShopID: shopID, SecretKey: secretKey, payments: map[string]*yookassa.Payment{},
		byKey: map[string]string{}, refunds: map[string]yookassa.Refund{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API base URL (…/v3).
func (s *Server) URL() string { return s.srv.URL + "/v3" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

func fail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"type": "error", "code": code, "description": desc})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if id, secret, ok := r.BasicAuth(); !ok || id != s.ShopID || secret != s.SecretKey {
		fail(w, http.StatusUnauthorized, "invalid_credentials", "Login or password is incorrect")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/payments":
		key := r.Header.Get("Idempotence-Key")
		if key == "" {
			fail(w, http.StatusBadRequest, "invalid_request", "Idempotence key isn't specified")
			return
		}
		if id, ok := s.byKey[key]; ok {
			reply(w, s.payments[id])
			return
		}
		var req yookassa.PaymentRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Amount.Value == "" || req.Confirmation.Type != "redirect" {
			fail(w, http.StatusBadRequest, "invalid_request", "amount and a redirect confirmation are required")
			return
		}
		s.next++
		id := fmt.Sprintf("2e%06d-000f-5000-9000-%012d", s.next, s.next)
		p := &yookassa.Payment{ID: id, Status: yookassa.StatusPending, Amount: req.Amount, CreatedAt: time.Now().UTC(),
			Description: req.Description, Metadata: req.Metadata,
			Confirmation: &yookassa.Confirmation{Type: "redirect", ConfirmationURL: "https://yoomoney.ru/checkout/payments/v2/contract?orderId=" + id}}
		s.payments[id], s.byKey[key] = p, id
		s.requests = append(s.requests, Request{Key: key, Body: req})
		reply(w, p)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v3/payments/"):
		p, ok := s.payments[strings.TrimPrefix(r.URL.Path, "/v3/payments/")]
		if !ok {
			fail(w, http.StatusNotFound, "not_found", "Payment not found")
			return
		}
		reply(w, p)
	case r.Method == http.MethodPost && r.URL.Path == "/v3/refunds":
		key := r.Header.Get("Idempotence-Key")
		var req struct {
			PaymentID string          `json:"payment_id"`
			Amount    yookassa.Amount `json:"amount"`
		}
		if key == "" || json.NewDecoder(r.Body).Decode(&req) != nil {
			fail(w, http.StatusBadRequest, "invalid_request", "Idempotence key and payment_id are required")
			return
		}
		if id, ok := s.byKey[key]; ok {
			reply(w, s.refunds[id])
			return
		}
		p, ok := s.payments[req.PaymentID]
		if !ok || p.Status != yookassa.StatusSucceeded {
			fail(w, http.StatusBadRequest, "invalid_request", "Payment can't be refunded")
			return
		}
		s.next++
		ref := yookassa.Refund{ID: fmt.Sprintf("rf%06d", s.next), PaymentID: p.ID, Status: yookassa.StatusSucceeded, Amount: req.Amount}
		s.refunds[ref.ID], s.byKey[key] = ref, ref.ID
		reply(w, ref)
	default:
		fail(w, http.StatusNotFound, "not_found", "Unknown method")
	}
}

// Requests are the create-payment calls so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Payments are the payments created so far, oldest first.
func (s *Server) Payments() []yookassa.Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []yookassa.Payment
	for i := 1; i <= s.next; i++ {
		if p, ok := s.payments[fmt.Sprintf("2e%06d-000f-5000-9000-%012d", i, i)]; ok {
			out = append(out, *p)
		}
	}
	return out
}

// Succeed is the customer paying: the payment becomes succeeded.
func (s *Server) Succeed(id string) { s.set(id, yookassa.StatusSucceeded, true) }

// Cancel is the payment failing or expiring.
func (s *Server) Cancel(id string) { s.set(id, yookassa.StatusCanceled, false) }

func (s *Server) set(id, status string, paid bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.payments[id]; ok {
		p.Status, p.Paid = status, paid
	}
}

// Refunds are the refunds made so far.
func (s *Server) Refunds() []yookassa.Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []yookassa.Refund
	for _, r := range s.refunds {
		out = append(out, r)
	}
	return out
}
