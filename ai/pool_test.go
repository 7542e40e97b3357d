package ai_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

// A provider's connections are bounded by Config.MaxConns: calls past the
// bound wait for a connection instead of opening more sockets, and every
// call is answered once one is free.
func TestProviderPoolIsBounded(t *testing.T) {
	const bound, calls = 3, 12
	srv := aitest.New()
	t.Cleanup(srv.Close)
	r, err := ai.New(ai.Config{Providers: providers(srv), Models: []ai.Model{chatModel("m")}, Timeout: healthy, MaxConns: bound}, fixedClock{testNow})
	if err != nil {
		t.Fatal(err)
	}
	release := srv.Hold()
	defer release()

	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := userSays("hello")
			req.Model = "m"
			_, err := r.ChatStream(context.Background(), req, func(string) {})
			errs <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for now, _ := srv.InFlight(); now < bound; now, _ = srv.InFlight() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls reached the provider", now)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for calls past the bound to show up, were they let through
	if now, _ := srv.InFlight(); now != bound {
		t.Errorf("%d calls in flight at the provider, want %d (MaxConns)", now, bound)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, most := srv.InFlight(); most > bound {
		t.Errorf("%d calls at once, MaxConns is %d", most, bound)
	}
	if srv.Count() != calls {
		t.Errorf("provider answered %d calls, want %d", srv.Count(), calls)
	}
}

func TestNegativeMaxConnsIsRejected(t *testing.T) {
	if _, err := ai.New(ai.Config{MaxConns: -1}, nil); err == nil {
		t.Error("MaxConns -1 accepted")
	}
}
