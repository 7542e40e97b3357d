package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

type memStates struct {
	mu sync.Mutex
	m  map[int64]string
}

func (s *memStates) State(id int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id], nil
}

func (s *memStates) SetState(id int64, st string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = st
	return nil
}

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

// dialogRig is a router with one prompt ("city", opened by /city, kept
// open by the "c" buttons), a chat for plain text and a log of what ran.
type dialogRig struct {
	rt     *Router
	signer *Signer
	states *memStates
	clock  *stepClock
	ran    []string
	ended  []DialogEnd
	fail   error // what the prompt's handler returns
	end    bool  // the prompt's handler calls EndDialog
}

func newDialogRig() *dialogRig {
	x := &dialogRig{signer: NewSigner([]byte("k")), states: &memStates{m: map[int64]string{}},
		clock: &stepClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	x.rt = NewRouter(x.signer)
	x.rt.UseDialogs(DialogConfig{Store: x.states, Clock: x.clock, Timeout: 15 * time.Minute,
		Ended: func(_ context.Context, r *Request, d Dialog, why DialogEnd) error {
			x.ended = append(x.ended, why)
			return nil
		}})
	note := func(what string) HandlerFunc {
		return func(_ context.Context, r *Request) error {
			x.ran = append(x.ran, what)
			return nil
		}
	}
	x.rt.Command("city", valex.RoleUser, "", func(_ context.Context, r *Request) error {
		x.ran = append(x.ran, "/city")
		r.StartDialog("city", "home")
		return nil
	})
	x.rt.Command("cancel", valex.RoleUser, "", func(_ context.Context, r *Request) error {
		ended := "none"
		if r.Dialog != nil {
			ended = r.Dialog.Name
		}
		x.ran = append(x.ran, "/cancel ended="+ended)
		return nil
	})
	x.rt.Command("usage", valex.RoleUser, "", note("/usage"))
	x.rt.Callback("c", valex.RoleUser, note("button c"))
	x.rt.Callback("other", valex.RoleUser, note("button other"))
	x.rt.Dialog("city", valex.RoleUser, func(_ context.Context, r *Request) error {
		x.ran = append(x.ran, "city="+r.Text+" arg="+r.Dialog.Arg)
		if x.end {
			r.EndDialog()
		}
		return x.fail
	}, DialogOptions{Buttons: []CallbackRoute{"c"}})
	x.rt.On(KindText, note("chat"))
	return x
}

func (x *dialogRig) send(t *testing.T, u *Update) error {
	t.Helper()
	if u.ChatType == "" {
		u.ChatType = ChatPrivate
	}
	u.From.ID, u.ChatID = 7, 7
	if u.ChatType != ChatPrivate {
		u.ChatID = -100
		u.Mentioned = true
	}
	x.ran = nil
	return x.rt.Handle(context.Background(), &Request{Update: u, Lang: "en"})
}

func (x *dialogRig) open(t *testing.T) {
	t.Helper()
	if err := x.send(t, &Update{Kind: KindCommand, Command: "city"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := x.states.State(7); !strings.Contains(st, `"n":"city"`) {
		t.Fatalf("state after /city = %q", st)
	}
}

func (x *dialogRig) want(t *testing.T, ran ...string) {
	t.Helper()
	if strings.Join(x.ran, "|") != strings.Join(ran, "|") {
		t.Fatalf("ran %q, want %q", x.ran, ran)
	}
}

func (x *dialogRig) open0(t *testing.T) bool {
	st, _ := x.states.State(7)
	return st != ""
}

func TestDialogTakesTheNextMessageOnce(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.send(t, &Update{Kind: KindText, Text: "Lisbon"})
	x.want(t, "city=Lisbon arg=home")
	if x.open0(t) {
		t.Fatal("the prompt stayed open after its answer")
	}
	x.send(t, &Update{Kind: KindText, Text: "what is 2+2?"})
	x.want(t, "chat")
}

func TestDialogEndsOnAnyCommand(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.send(t, &Update{Kind: KindCommand, Command: "usage"})
	x.want(t, "/usage")
	if len(x.ended) != 1 || x.ended[0] != EndedByCommand {
		t.Fatalf("ended = %v", x.ended)
	}
	x.send(t, &Update{Kind: KindText, Text: "what is 2+2?"})
	x.want(t, "chat") // the question is the chat's, not the prompt's
}

func TestDialogCancelEndsItQuietly(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.send(t, &Update{Kind: KindCommand, Command: "cancel"})
	x.want(t, "/cancel ended=city")
	if len(x.ended) != 0 || x.open0(t) {
		t.Fatalf("ended = %v, still open %v", x.ended, x.open0(t))
	}
	x.send(t, &Update{Kind: KindCommand, Command: "cancel"})
	x.want(t, "/cancel ended=none")
}

func TestDialogButtons(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.send(t, &Update{Kind: KindCallback, CallbackData: x.signer.Data("c", "clear")})
	x.want(t, "button c")
	if !x.open0(t) || len(x.ended) != 0 {
		t.Fatal("a button of the prompt's own screen ended it")
	}
	x.send(t, &Update{Kind: KindCallback, CallbackData: x.signer.Data("other")})
	x.want(t, "button other")
	if x.open0(t) || len(x.ended) != 1 || x.ended[0] != EndedByButton {
		t.Fatalf("another screen's button: open %v, ended %v", x.open0(t), x.ended)
	}
}

func TestDialogTimeoutSendsTheLateMessageNowhere(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.clock.t = x.clock.t.Add(15*time.Minute + time.Second)
	x.send(t, &Update{Kind: KindText, Text: "late answer"})
	x.want(t) // neither the prompt nor the chat
	if x.open0(t) || len(x.ended) != 1 || x.ended[0] != EndedByTimeout {
		t.Fatalf("open %v, ended %v", x.open0(t), x.ended)
	}
	x.send(t, &Update{Kind: KindText, Text: "next"})
	x.want(t, "chat")

	// Just inside the timeout the answer still counts.
	x.open(t)
	x.clock.t = x.clock.t.Add(15 * time.Minute)
	x.send(t, &Update{Kind: KindText, Text: "Porto"})
	x.want(t, "city=Porto arg=home")
}

func TestDialogFailureKeepsThePrompt(t *testing.T) {
	x := newDialogRig()
	x.open(t)
	x.fail = valex.Errorf("profile.bad", nil)
	if err := x.send(t, &Update{Kind: KindText, Text: "x"}); err == nil {
		t.Fatal("the handler's error was lost")
	}
	if !x.open0(t) {
		t.Fatal("a failed answer ended the prompt")
	}
	x.end = true
	x.send(t, &Update{Kind: KindText, Text: "x"})
	if x.open0(t) {
		t.Fatal("EndDialog did not end the prompt on an error")
	}
	// A message the prompt does not take (a photo) gets an error and the
	// prompt stays; it never reaches the chat.
	x.fail, x.end = nil, false
	x.open(t)
	err := x.send(t, &Update{Kind: KindPhoto})
	if ue, ok := valex.AsUserError(err); !ok || ue.Key != "error.dialog_wrong_kind" || !x.open0(t) {
		t.Fatalf("photo in a text prompt: %v, open %v", err, x.open0(t))
	}
}

func TestDialogsStayOutOfGroups(t *testing.T) {
	x := newDialogRig()
	x.send(t, &Update{Kind: KindCommand, Command: "city", ChatType: ChatGroup})
	if x.open0(t) {
		t.Fatal("a group command opened a prompt")
	}
	x.open(t)
	x.send(t, &Update{Kind: KindText, Text: "in the group", ChatType: ChatGroup})
	x.want(t, "chat")
	if !x.open0(t) {
		t.Fatal("a group message touched the private prompt")
	}
}

func TestStaleDialogStateIsDropped(t *testing.T) {
	x := newDialogRig()
	x.states.SetState(7, "profile:city") // the string format of older versions
	x.send(t, &Update{Kind: KindText, Text: "hello"})
	x.want(t, "chat")
	if x.open0(t) {
		t.Fatal("a stale state stayed")
	}
}

func TestDuplicateRoutesPanic(t *testing.T) {
	for name, register := range map[string]func(rt *Router){
		"command": func(rt *Router) {
			rt.Command("a", valex.RoleUser, "", ignore)
			rt.Command("a", valex.RoleUser, "", ignore)
		},
		"callback": func(rt *Router) { rt.Callback("a", valex.RoleUser, ignore); rt.Callback("a", valex.RoleUser, ignore) },
		"dialog": func(rt *Router) {
			rt.Dialog("a", valex.RoleUser, ignore, DialogOptions{})
			rt.Dialog("a", valex.RoleUser, ignore, DialogOptions{})
		},
		"kind": func(rt *Router) { rt.On(KindText, ignore); rt.On(KindText, ignore) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(p.(string), "twice") {
					t.Fatalf("no panic on a duplicate %s: %v", name, p)
				}
			}()
			register(NewRouter(NewSigner([]byte("k"))))
		})
	}
}
