package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/valex-ai/valex"
)

// UserLimit keeps one account from flooding the bot (and its AI budget):
// past perMinute updates a minute (with a burst of the same size) the user is
// told once to slow down, and further updates are dropped until the limit
// refills. Staff are never limited.
func UserLimit(perMinute int) Middleware {
	if perMinute <= 0 {
		return func(next HandlerFunc) HandlerFunc { return next }
	}
	l := &userLimits{per: rate.Limit(float64(perMinute) / 60), burst: perMinute, users: make(map[int64]*userLimit)}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, r *Request) error {
			if r.Role != valex.RoleUser || r.From.ID == 0 || r.Kind == KindPreCheckout || r.Kind == KindPayment || r.Kind == KindStop {
				return next(ctx, r) // a payment in flight, or a stop, must never be dropped
			}
			switch l.check(r.From.ID) {
			case limitOK:
				return next(ctx, r)
			case limitWarn:
				return valex.Errorf("error.rate_limited", nil)
			}
			return nil // already warned: drop quietly
		}
	}
}

type userLimits struct {
	per   rate.Limit
	burst int
	mu    sync.Mutex
	users map[int64]*userLimit
}

type userLimit struct {
	lim    *rate.Limiter
	warned bool
}

const (
	limitOK = iota
	limitWarn
	limitDrop
)

func (l *userLimits) check(id int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	u := l.users[id]
	if u == nil {
		if len(l.users) >= sweepAt {
			for k, v := range l.users {
				if v.lim.TokensAt(now) >= float64(l.burst) {
					delete(l.users, k)
				}
			}
		}
		u = &userLimit{lim: rate.NewLimiter(l.per, l.burst)}
		l.users[id] = u
	}
	if u.lim.AllowN(now, 1) {
		u.warned = false
		return limitOK
	}
	if !u.warned {
		u.warned = true
		return limitWarn
	}
	return limitDrop
}
