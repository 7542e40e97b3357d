package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// Dialogs: a prompt that waits for the user's next message (a ticket's
// text, a profile field, a staff member's reason) is a route like a
// command. A handler opens one with Request.StartDialog; the router keeps
// it in the user's dialog state and reads it once per update:
//
//   - a message (text, contact, media) goes to the dialog's handler, never
//     to the chat: text typed into a prompt does not reach an AI provider;
//   - any command, a button of another screen or the timeout ends it, and
//     the user is told (for /cancel its handler says so);
//   - the dialog ends when its handler succeeds, unless that handler opens
//     the next one; when it fails the prompt stays, so the user can retry.
//
// Dialogs live in private chats only: a group never sees a prompt.

// Dialog is a prompt waiting for the user's next message.
type Dialog struct {
	Name    string    `json:"n"`
	Arg     string    `json:"a,omitempty"` // what the prompt is about: a field, a ticket id
	Started time.Time `json:"t"`
}

// DialogEnd says why a prompt ended without its answer.
type DialogEnd int

const (
	EndedByCommand DialogEnd = iota + 1 // the user sent another command
	EndedByButton                       // the user pressed a button of another screen
	EndedByTimeout                      // nothing came within the timeout
	EndedByCancel                       // /cancel (its handler tells the user)
)

// DialogStore keeps each user's dialog state (opaque to the store).
type DialogStore interface {
	State(userID int64) (string, error)
	SetState(userID int64, state string) error
}

// DialogConfig turns dialogs on (Router.UseDialogs).
type DialogConfig struct {
	Store   DialogStore
	Clock   valex.Clock
	Timeout time.Duration // default 15 minutes
	// Ended tells the user their prompt ended without an answer (every
	// reason but EndedByCancel). A message that arrives after the timeout
	// is not handled: Ended must say it went nowhere.
	Ended func(ctx context.Context, r *Request, d Dialog, why DialogEnd) error
}

// DialogOptions describe what a dialog accepts besides text.
type DialogOptions struct {
	// Kinds the prompt accepts; default text only. Other messages get
	// error.dialog_wrong_kind and the prompt stays.
	Kinds []Kind
	// Buttons are the callback prefixes of the prompt's own screen: pressing
	// one keeps the prompt open (a "Clear" button beside "type a new city").
	Buttons []CallbackRoute
}

type dialogRoute struct {
	role    valex.Role
	h       HandlerFunc
	kinds   map[Kind]bool
	buttons map[string]bool
}

// Dialog registers the handler of the messages that answer the prompt name.
func (rt *Router) Dialog(name string, role valex.Role, h HandlerFunc, opt DialogOptions) {
	if _, dup := rt.dialogRoutes[name]; dup {
		panic(fmt.Sprintf("bot: dialog %q registered twice", name))
	}
	d := dialogRoute{role: role, h: h, kinds: map[Kind]bool{}, buttons: map[string]bool{}}
	if len(opt.Kinds) == 0 {
		opt.Kinds = []Kind{KindText}
	}
	for _, k := range opt.Kinds {
		d.kinds[k] = true
	}
	for _, b := range opt.Buttons {
		d.buttons[string(b)] = true
	}
	rt.dialogRoutes[name] = d
}

// UseDialogs turns on dialog routing with the given state store.
func (rt *Router) UseDialogs(c DialogConfig) {
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Minute
	}
	rt.dialogs = &c
}

// StartDialog opens the prompt name once the handler returns without an
// error (in a private chat; in a group it is ignored).
func (r *Request) StartDialog(name, arg string) {
	r.next = &Dialog{Name: name, Arg: arg}
}

// EndDialog ends the prompt being answered even if the handler fails (a
// mistake typing cannot fix, such as a ticket closed meanwhile).
func (r *Request) EndDialog() { r.endDialog = true }

// withDialogs wraps the route's handler h with the dialog step.
func (rt *Router) withDialogs(h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, r *Request) error {
		c := rt.dialogs
		if c == nil || !r.Private() || r.From.ID == 0 {
			return h(ctx, r)
		}
		cur, err := rt.loadDialog(r.From.ID)
		if err != nil {
			return err
		}
		answered := false // the update answers the open prompt
		if cur != nil {
			route, known := rt.dialogRoutes[cur.Name]
			var why DialogEnd
			switch {
			case !known:
				why = -1 // a prompt of an older version: end it quietly
			case c.Clock.Now().Sub(cur.Started) > c.Timeout:
				why = EndedByTimeout
			case r.Kind == KindCommand && r.Command == "cancel":
				why = EndedByCancel
			case r.Kind == KindCommand:
				why = EndedByCommand
			case r.Kind == KindCallback:
				if prefix, _, ok := rt.signer.Parse(r.CallbackData); !ok || !route.buttons[prefix] {
					why = EndedByButton
				}
			case isMessage(r.Kind):
				if !r.Role.Allows(route.role) {
					why = -1 // the role was taken away mid-prompt: an ordinary message
					break
				}
				answered = true
				r.Dialog = cur
				if route.kinds[r.Kind] {
					h = route.h
				} else {
					h = fail(valex.Errorf("error.dialog_wrong_kind", nil))
				}
			}
			if why != 0 {
				if err := c.Store.SetState(r.From.ID, ""); err != nil {
					return err
				}
				r.Dialog = cur // /cancel says what it cancelled
				if why > 0 && why != EndedByCancel && c.Ended != nil {
					if err := c.Ended(ctx, r, *cur, why); err != nil {
						return err
					}
				}
				if why == EndedByTimeout && isMessage(r.Kind) {
					return nil // meant for the prompt: it goes nowhere else
				}
			}
		}
		err = h(ctx, r)
		switch {
		case err != nil && answered && r.endDialog:
			if cerr := c.Store.SetState(r.From.ID, ""); cerr != nil {
				return cerr
			}
			return err
		case err != nil:
			return err // the prompt stays as it was: the user can try again
		case r.next != nil:
			r.next.Started = c.Clock.Now()
			b, merr := json.Marshal(r.next)
			if merr != nil {
				return merr
			}
			return c.Store.SetState(r.From.ID, string(b))
		case answered:
			return c.Store.SetState(r.From.ID, "")
		}
		return nil
	}
}

// loadDialog reads the user's open prompt; nil when there is none (an
// unreadable state, left by an older version, counts as none).
func (rt *Router) loadDialog(userID int64) (*Dialog, error) {
	s, err := rt.dialogs.Store.State(userID)
	if err != nil || s == "" {
		return nil, err
	}
	var d Dialog
	if json.Unmarshal([]byte(s), &d) != nil || d.Name == "" {
		return &Dialog{Name: "\x00stale"}, nil // unknown route: ended quietly
	}
	return &d, nil
}

// isMessage reports whether the update is a message a prompt may take.
func isMessage(k Kind) bool {
	switch k {
	case KindText, KindPhoto, KindVoice, KindDocument, KindContact:
		return true
	}
	return false
}
