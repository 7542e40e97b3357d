package bot

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Request is what a handler gets: the update plus who sent it, in which
// language to answer, and (for callbacks) the verified button arguments.
type Request struct {
	*Update
	Lang string
	Role valex.Role
	// CallbackArgs are the arguments of a signed callback button.
	CallbackArgs []string
	// Toast is shown as the answer to a pressed button (plain text, optional).
	Toast string
	// Dialog is, for a dialog's handler, the prompt being answered; for a
	// command or button that ended a prompt, the prompt it ended.
	Dialog *Dialog

	next      *Dialog // the prompt StartDialog opens
	endDialog bool    // EndDialog: end the prompt even on an error

	flight *inflight // the update until it is finished: Defer (defer.go)
}

// HandlerFunc handles one update. It returns an error instead of replying
// with one: the bot answers every error in one place (a valex.UserError as
// its localized text, anything else as "something went wrong").
type HandlerFunc func(ctx context.Context, r *Request) error

// Middleware wraps a handler.
type Middleware func(HandlerFunc) HandlerFunc

// CommandInfo describes a registered command for /help and the command menu.
type CommandInfo struct {
	Name    string
	Role    valex.Role
	HelpKey string // locale key of the one-line description
	Hidden  bool   // handled but not listed in menus
}

type route struct {
	info CommandInfo
	h    HandlerFunc
}

// Router finds the handler for an update: commands by name, callback
// buttons by prefix, everything else by kind. Every route declares the role
// it needs; the router refuses the rest before the handler runs.
type Router struct {
	commands  map[string]route
	callbacks map[string]route
	kinds     map[Kind]HandlerFunc
	mw        []Middleware
	signer    *Signer

	dialogRoutes map[string]dialogRoute
	dialogs      *DialogConfig // nil: dialogs off

	// groupSafe are the commands and button prefixes that may run in a
	// group; every other one answers there with error.private_only, so no
	// screen with personal data is ever posted where others read it.
	groupSafe map[string]bool

	// listed caches Commands by role: the routes do not change once the
	// bot runs, and /help and the command menu ask on every call.
	listed sync.Map // valex.Role → []CommandInfo
}

// NewRouter returns an empty router verifying callback data with signer.
func NewRouter(signer *Signer) *Router {
	return &Router{
		commands:  make(map[string]route),
		callbacks: make(map[string]route),
		kinds:     make(map[Kind]HandlerFunc),
		signer:    signer,

		dialogRoutes: make(map[string]dialogRoute),
		groupSafe:    make(map[string]bool),
	}
}

// Use appends middleware; the first added runs outermost.
func (rt *Router) Use(mw ...Middleware) { rt.mw = append(rt.mw, mw...) }

// Registering a command, a button prefix, a dialog or a kind twice is a
// programming error: it panics at start-up instead of one registration
// silently winning.

// Command registers /name for accounts with at least role.
func (rt *Router) Command(name string, role valex.Role, helpKey string, h HandlerFunc) {
	if _, dup := rt.commands[name]; dup {
		panic(fmt.Sprintf("bot: command /%s registered twice", name))
	}
	rt.commands[name] = route{info: CommandInfo{Name: name, Role: role, HelpKey: helpKey, Hidden: helpKey == ""}, h: h}
	rt.listed.Clear() // a command added after a listing
}

// CallbackRoute names a kind of button: declared once, it makes its
// buttons' signed data (Data) and Router.Callback routes their presses, so
// nobody formats or parses a prefix by hand.
type CallbackRoute string

// Data is the signed callback data of a button of this route with args.
func (c CallbackRoute) Data(s *Signer, args ...string) string { return s.Data(string(c), args...) }

// Callback registers the handler of the route's buttons.
func (rt *Router) Callback(cb CallbackRoute, role valex.Role, h HandlerFunc) {
	prefix := string(cb)
	if _, dup := rt.callbacks[prefix]; dup {
		panic(fmt.Sprintf("bot: callback prefix %q registered twice", prefix))
	}
	rt.callbacks[prefix] = route{info: CommandInfo{Name: prefix, Role: role}, h: h}
}

// On registers the handler of one kind of update (text, photo, voice ...).
func (rt *Router) On(kind Kind, h HandlerFunc) {
	if _, dup := rt.kinds[kind]; dup {
		panic(fmt.Sprintf("bot: update kind %d registered twice", kind))
	}
	rt.kinds[kind] = h
}

// InGroups lets commands ("/help") and button prefixes ("aii") run in
// groups. Declare only screens that show nothing personal.
func (rt *Router) InGroups(names ...string) {
	for _, n := range names {
		rt.groupSafe[n] = true
	}
}

// Routes lists every registered command and button prefix, in name order
// (for tests that must cover them all).
func (rt *Router) Routes() (commands, callbacks []string) {
	for n := range rt.commands {
		commands = append(commands, n)
	}
	for p := range rt.callbacks {
		callbacks = append(callbacks, p)
	}
	sort.Strings(commands)
	sort.Strings(callbacks)
	return commands, callbacks
}

// Callbacks lists every button route with the role it needs, in name order.
func (rt *Router) Callbacks() []CommandInfo {
	var out []CommandInfo
	for _, r := range rt.callbacks {
		out = append(out, r.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Commands lists the commands the role may use, in name order.
func (rt *Router) Commands(role valex.Role) []CommandInfo {
	if c, ok := rt.listed.Load(role); ok {
		return slices.Clone(c.([]CommandInfo))
	}
	out := rt.commandsFor(role)
	rt.listed.Store(role, out)
	return slices.Clone(out)
}

func (rt *Router) commandsFor(role valex.Role) []CommandInfo {
	var out []CommandInfo
	for _, r := range rt.commands {
		if !r.info.Hidden && role.Allows(r.info.Role) {
			out = append(out, r.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Has reports whether a command is registered (used by tests of the role matrix).
func (rt *Router) Has(name string) (CommandInfo, bool) {
	r, ok := rt.commands[name]
	return r.info, ok
}

// Handle routes one request through the middleware to its handler.
func (rt *Router) Handle(ctx context.Context, r *Request) error {
	h := rt.withDialogs(rt.resolve(r))
	for i := len(rt.mw) - 1; i >= 0; i-- {
		h = rt.mw[i](h)
	}
	return h(ctx, r)
}

// Errors the router answers itself.
var (
	errUnknownCommand = func(cmd string) error {
		// The command is the user's text: escaped, or "/x&lt;b&gt;" would
		// reach the user as "/x<b>" (and a bare "&" would break the HTML).
		return valex.Errorf("error.unknown_command", map[string]any{"Command": tghtml.Escape("/" + cmd)})
	}
	errUnsupported = valex.Errorf("error.unsupported_update", nil)
	errPrivateOnly = valex.Errorf("error.private_only", nil)
	errBadCallback = valex.Errorf("error.bad_callback", nil)
)

func ignore(context.Context, *Request) error { return nil }

func fail(err error) HandlerFunc {
	return func(context.Context, *Request) error { return err }
}

// resolve picks the handler, wrapped in its role check.
func (rt *Router) resolve(r *Request) HandlerFunc {
	group := !r.Private()
	switch r.Kind {
	case KindCommand:
		route, ok := rt.commands[r.Command]
		if !ok {
			if group {
				return ignore // may well be meant for another bot
			}
			return fail(errUnknownCommand(r.Command))
		}
		if group && !rt.groupSafe[r.Command] {
			return fail(errPrivateOnly)
		}
		return requireRole(route.info.Role, route.h)
	case KindCallback:
		prefix, args, ok := rt.signer.Parse(r.CallbackData)
		route, known := rt.callbacks[prefix]
		if !ok || !known {
			return fail(errBadCallback)
		}
		if group && !rt.groupSafe[prefix] {
			return fail(errPrivateOnly)
		}
		r.CallbackArgs = args
		return requireRole(route.info.Role, route.h)
	case KindIgnored:
		return ignore
	case KindStop:
		if h, ok := rt.kinds[KindStop]; ok {
			return h
		}
		return ignore // nothing streams drafts: nothing to stop
	case KindText, KindPhoto, KindVoice, KindDocument, KindContact:
		if group && !r.Mentioned {
			return ignore // in groups the bot speaks only when spoken to
		}
	}
	if h, ok := rt.kinds[r.Kind]; ok {
		return h
	}
	if group {
		return ignore
	}
	return fail(errUnsupported)
}

func requireRole(need valex.Role, h HandlerFunc) HandlerFunc {
	if need == valex.RoleUser {
		return h
	}
	return func(ctx context.Context, r *Request) error {
		if !r.Role.Allows(need) {
			if need == valex.RoleAdmin {
				return valex.Errorf("error.admin_only", nil)
			}
			return valex.Errorf("error.staff_only", nil)
		}
		return h(ctx, r)
	}
}

// Recover turns a handler panic into an error so the bot lives on and the
// user is told something went wrong.
func Recover() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, r *Request) (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
				}
			}()
			return next(ctx, r)
		}
	}
}

// Logging records each update's kind, ids and duration — never its text.
// The user (and a private chat, whose id is the user's) is logged as its
// pseudonym, never as the Telegram id.
func Logging(log zerolog.Logger, ids valex.Pseudonymizer) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, r *Request) error {
			start := time.Now()
			err := next(ctx, r)
			if e := log.Debug(); e.Enabled() {
				e.Int("update_id", r.ID).Str("chat", ids.Chat(r.ChatID)).Str("user", ids.User(r.From.ID)).
					Str("command", r.Command).Int("kind", int(r.Kind)).Int64("took_ms", time.Since(start).Milliseconds()).Msg("update handled")
			}
			return err
		}
	}
}

// Identity sets the request's language and role before the handler runs.
func Identity(lang func(ctx context.Context, f From) string, role func(userID int64) valex.Role) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, r *Request) error {
			r.Lang = lang(ctx, r.From)
			r.Role = role(r.From.ID)
			return next(ctx, r)
		}
	}
}
