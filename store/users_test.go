package store

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// fullUser has every field set to a value unlikely to occur by chance in
// the file.
func fullUser(id int64) valex.User {
	return valex.User{
		ID:           id,
		Nickname:     "nick-Zq7",
		Language:     "ru",
		City:         "city-Kx9",
		Description:  "desc-Vv3 <b>likes</b> \"cats\" & ёжики",
		Email:        "zq7@example.org",
		Phone:        "+15550001234",
		CreatedAt:    t0,
		LastActiveAt: t0.Add(time.Hour),
	}
}

// checkUser fails the test if got and want differ; times compare by instant.
func checkUser(tb testing.TB, got, want valex.User) {
	tb.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastActiveAt.Equal(want.LastActiveAt) {
		tb.Errorf("times: got created %v active %v, want %v %v",
			got.CreatedAt, got.LastActiveAt, want.CreatedAt, want.LastActiveAt)
	}
	got.CreatedAt, got.LastActiveAt = time.Time{}, time.Time{}
	want.CreatedAt, want.LastActiveAt = time.Time{}, time.Time{}
	if got != want {
		tb.Errorf("user:\n got %+v\nwant %+v", got, want)
	}
}

func TestUserRoundTrip(t *testing.T) {
	moscow := time.FixedZone("MSK", 3*60*60)
	tests := []struct {
		name string
		user valex.User
	}{
		{"all fields", fullUser(42)},
		{"id only", valex.User{ID: 7}},
		{"large id", valex.User{ID: 1<<62 + 5, Nickname: "big"}},
		{"non-UTC times", valex.User{ID: 8, Language: "en", CreatedAt: t0.In(moscow), LastActiveAt: t0.In(moscow)}},
		{"long description", valex.User{ID: 9, Description: strings.Repeat("ж", valex.MaxDescriptionLen)}},
	}
	codecs := []struct {
		name  string
		codec Codec
	}{{"plain", PlainCodec{}}, {"test", testCodec{}}}
	for _, c := range codecs {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				db := openTest(t, c.codec)
				if err := db.PutUser(tt.user); err != nil {
					t.Fatalf("PutUser: %v", err)
				}
				got, err := db.User(tt.user.ID)
				if err != nil {
					t.Fatalf("User: %v", err)
				}
				checkUser(t, got, tt.user)
				if got.CreatedAt.Location() != time.UTC {
					t.Errorf("CreatedAt location %v, want UTC", got.CreatedAt.Location())
				}
			})
		}
	}
}

func TestPutUserReplaces(t *testing.T) {
	db := openTest(t, testCodec{})
	u := fullUser(42)
	if err := db.PutUser(u); err != nil {
		t.Fatal(err)
	}
	u.Nickname, u.Email, u.City = "other", "", ""
	if err := db.PutUser(u); err != nil {
		t.Fatal(err)
	}
	got, err := db.User(42)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, u)
}

func TestPutUserRejectsZeroID(t *testing.T) {
	db := openTest(t, nil)
	if err := db.PutUser(valex.User{Nickname: "x"}); err == nil {
		t.Fatal("PutUser with zero id: want error")
	}
}

func TestUserNotFound(t *testing.T) {
	db := openTest(t, nil)
	_, err := db.User(404)
	if !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("User(404) error = %v, want ErrNotFound", err)
	}
}

// UserActivity reads the language and last activity User returns, without
// the codec: a codec that refuses to open proves it is not asked.
func TestUserActivityReadsTheClearHeader(t *testing.T) {
	db := openTest(t, testCodec{})
	u := fullUser(7)
	if err := db.PutUser(u); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchUser(7, t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.codec = refusingCodec{testCodec{}}
	lang, active, err := db.UserActivity(7)
	if err != nil || lang != "ru" || !active.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("UserActivity(7) = %q, %v, %v; want ru, %v", lang, active, err, t0.Add(5*time.Hour))
	}
	if _, err := db.User(7); err == nil {
		t.Fatal("User(7) with a refusing codec: want an error (the control)")
	}
	if _, _, err := db.UserActivity(404); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("UserActivity(404) error = %v, want ErrNotFound", err)
	}
}

// refusingCodec seals like its inner codec and opens nothing.
type refusingCodec struct{ Codec }

func (refusingCodec) Open(int64, []byte) ([]byte, error) { return nil, errors.New("refused") }

// The raw file must not hold personal fields in the clear when the codec
// hides them. The plain codec is the control: it shows the scan finds them.
func TestPersonalFieldsGoThroughCodec(t *testing.T) {
	tests := []struct {
		name     string
		codec    Codec
		wantSeen bool
	}{
		{"plain codec shows them", PlainCodec{}, true},
		{"test codec hides them", testCodec{}, false},
	}
	u := fullUser(42)
	personal := map[string]string{
		"nickname": u.Nickname, "city": u.City, "description": "desc-Vv3",
		"email": u.Email, "phone": u.Phone,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, tt.codec)
			if err := db.PutUser(u); err != nil {
				t.Fatal(err)
			}
			if _, err := db.UpdateUser(u.ID, func(u *valex.User) error { u.City += "!"; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := db.TouchUser(u.ID, t0.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(db.Path())
			if err != nil {
				t.Fatal(err)
			}
			for field, v := range personal {
				if seen := strings.Contains(string(raw), v); seen != tt.wantSeen {
					t.Errorf("%s %q in raw file: %v, want %v", field, v, seen, tt.wantSeen)
				}
			}
		})
	}
}

// A value sealed for one user must not open as another: the store passes
// the right id to the codec in both directions.
func TestCodecGetsUserID(t *testing.T) {
	db := openTest(t, testCodec{})
	if err := db.PutUser(fullUser(42)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(fullUser(43)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{42, 43} {
		if _, err := db.User(id); err != nil {
			t.Errorf("User(%d): %v", id, err)
		}
	}
}

func TestEnsureUser(t *testing.T) {
	db := openTest(t, testCodec{})
	first := fullUser(42)
	second := fullUser(42)
	second.Nickname, second.CreatedAt = "impostor", t0.Add(24*time.Hour)

	tests := []struct {
		name        string
		in          valex.User
		wantCreated bool
		want        valex.User
	}{
		{"absent is created", first, true, first},
		{"present is returned unchanged", second, false, first},
		{"again unchanged", second, false, first},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := db.EnsureUser(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			checkUser(t, got, tt.want)
			stored, err := db.User(42)
			if err != nil {
				t.Fatal(err)
			}
			checkUser(t, stored, tt.want)
		})
	}
	if n, _ := db.CountUsers(); n != 1 {
		t.Errorf("CountUsers = %d, want 1", n)
	}
	if n := bucketLen(t, db, bucketUsersByActive); n != 1 {
		t.Errorf("index entries = %d, want 1", n)
	}
}

func TestUpdateUser(t *testing.T) {
	errStop := errors.New("stop")
	tests := []struct {
		name    string
		id      int64
		fn      func(*valex.User) error
		wantErr error // nil: success; errAny: any error
		want    valex.User
	}{
		{
			name: "change fields",
			id:   42,
			fn:   func(u *valex.User) error { u.City, u.Language = "Kazan", "en"; return nil },
			want: func() valex.User { u := fullUser(42); u.City, u.Language = "Kazan", "en"; return u }(),
		},
		{
			name:    "fn error stores nothing",
			id:      42,
			fn:      func(u *valex.User) error { u.City = "lost"; return errStop },
			wantErr: errStop,
			want:    fullUser(42),
		},
		{
			name:    "changing the id is refused",
			id:      42,
			fn:      func(u *valex.User) error { u.ID = 43; return nil },
			wantErr: errAny,
			want:    fullUser(42),
		},
		{
			name:    "absent user",
			id:      404,
			fn:      func(*valex.User) error { return nil },
			wantErr: valex.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, testCodec{})
			if err := db.PutUser(fullUser(42)); err != nil {
				t.Fatal(err)
			}
			got, err := db.UpdateUser(tt.id, tt.fn)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("UpdateUser: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("UpdateUser error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				checkUser(t, got, tt.want)
			}
			if tt.want.ID == 0 {
				return
			}
			stored, err := db.User(tt.want.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkUser(t, stored, tt.want)
			if _, err := db.User(43); !errors.Is(err, valex.ErrNotFound) {
				t.Errorf("User(43) error = %v, want ErrNotFound", err)
			}
		})
	}
}

// errAny in a table means "some error, no particular one".
var errAny = errors.New("any error")

// inactive returns the ids InactiveSince reports for before.
func inactive(tb testing.TB, db *DB, before time.Time) []int64 {
	tb.Helper()
	var ids []int64
	if err := db.InactiveSince(before, func(id int64) error { ids = append(ids, id); return nil }); err != nil {
		tb.Fatalf("InactiveSince: %v", err)
	}
	return ids
}

func TestTouchUserAndInactiveSince(t *testing.T) {
	db := openTest(t, testCodec{})
	for i, id := range []int64{1, 2, 3} {
		u := fullUser(id)
		u.LastActiveAt = t0.Add(time.Duration(i+1) * time.Hour)
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	// Never active: indexed first, as inactive since forever.
	if err := db.PutUser(valex.User{ID: 4}); err != nil {
		t.Fatal(err)
	}
	// User 1 moves from 1h to 4h; users 2 (2h) and 3 (3h) stay.
	if err := db.TouchUser(1, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Changing LastActiveAt through UpdateUser moves the index entry too:
	// user 3 goes from 3h to 3h30m.
	if _, err := db.UpdateUser(3, func(u *valex.User) error {
		u.LastActiveAt = t0.Add(3*time.Hour + 30*time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		before time.Time
		want   []int64
	}{
		{"zero time", time.Time{}, nil},
		{"before everyone", t0, []int64{4}},
		{"exactly at user 2 excludes it", t0.Add(2 * time.Hour), []int64{4}},
		{"just after user 2", t0.Add(2*time.Hour + 1), []int64{4, 2}},
		{"old time of user 3 no longer matches", t0.Add(3*time.Hour + 1), []int64{4, 2}},
		{"after user 3", t0.Add(3*time.Hour + 30*time.Minute + 1), []int64{4, 2, 3}},
		{"old time of user 1 no longer matches", t0.Add(2 * time.Hour), []int64{4}},
		{"after everyone", t0.Add(5 * time.Hour), []int64{4, 2, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inactive(t, db, tt.before); !slices.Equal(got, tt.want) {
				t.Errorf("InactiveSince(%v) = %v, want %v", tt.before, got, tt.want)
			}
		})
	}
	if n := bucketLen(t, db, bucketUsersByActive); n != 4 {
		t.Errorf("index entries = %d, want 4 (old keys must be removed)", n)
	}

	got, err := db.User(1)
	if err != nil {
		t.Fatal(err)
	}
	want := fullUser(1)
	want.LastActiveAt = t0.Add(4 * time.Hour)
	want.LastActiveAt = want.LastActiveAt.UTC()
	checkUser(t, got, want)

	if err := db.TouchUser(404, t0); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("TouchUser(404) error = %v, want ErrNotFound", err)
	}
}

// A purge job deletes users from inside the InactiveSince callback.
func TestInactiveSinceCallbackMayWrite(t *testing.T) {
	db := openTest(t, nil)
	for id := int64(1); id <= 50; id++ {
		u := fullUser(id)
		u.LastActiveAt = t0.Add(time.Duration(id) * time.Minute)
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	err := db.InactiveSince(t0.Add(time.Hour), func(id int64) error { return db.DeleteUser(id) })
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountUsers(); n != 0 {
		t.Errorf("CountUsers after purge = %d, want 0", n)
	}

	errStop := errors.New("stop")
	if err := db.PutUser(fullUser(1)); err != nil {
		t.Fatal(err)
	}
	err = db.InactiveSince(t0.Add(24*time.Hour), func(int64) error { return errStop })
	if !errors.Is(err, errStop) {
		t.Errorf("InactiveSince error = %v, want the callback's", err)
	}
}

func TestDeleteUser(t *testing.T) {
	const target = int64(0x5eed_1234_abcd)
	db := openTest(t, testCodec{})
	for _, id := range []int64{target, 2} {
		if err := db.PutUser(fullUser(id)); err != nil {
			t.Fatal(err)
		}
		if err := db.TouchUser(id, t0.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.SetState(id, "awaiting_city"); err != nil {
			t.Fatal(err)
		}
	}
	key := idKey(target)

	// The scan must see the user before the delete, or it proves nothing.
	before := keysContaining(t, db, key)
	for _, b := range [][]byte{bucketUsers, bucketUsersByActive, bucketStates} {
		if before[string(b)] != 1 {
			t.Fatalf("before delete: %s has %d keys with the id, want 1", b, before[string(b)])
		}
	}

	if err := db.DeleteUser(target); err != nil {
		t.Fatal(err)
	}
	if after := keysContaining(t, db, key); len(after) != 0 {
		t.Errorf("after delete, keys with the id remain: %v", after)
	}
	if _, err := db.User(target); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("User after delete: %v, want ErrNotFound", err)
	}
	if err := db.DeleteUser(target); err != nil {
		t.Errorf("second DeleteUser: %v, want nil", err)
	}

	// The other user is untouched.
	if _, err := db.User(2); err != nil {
		t.Errorf("User(2): %v", err)
	}
	if s, _ := db.State(2); s != "awaiting_city" {
		t.Errorf("State(2) = %q", s)
	}
	if got := inactive(t, db, t0.Add(6*time.Hour)); !slices.Equal(got, []int64{2}) {
		t.Errorf("index after delete = %v, want [2]", got)
	}
}

func TestForEachAndCountUsers(t *testing.T) {
	db := openTest(t, testCodec{})
	ids := []int64{300, 1, 20}
	for _, id := range ids {
		if err := db.PutUser(fullUser(id)); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	err := db.ForEachUser(func(u valex.User) error {
		checkUser(t, u, fullUser(u.ID))
		got = append(got, u.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 20, 300}; !slices.Equal(got, want) {
		t.Errorf("ForEachUser ids = %v, want %v", got, want)
	}
	if n, err := db.CountUsers(); err != nil || n != 3 {
		t.Errorf("CountUsers = %d, %v; want 3", n, err)
	}
}

func TestState(t *testing.T) {
	path := t.TempDir() + "/valex.db"
	db := openAt(t, path, nil)
	mustAccount(t, db, 1, 2)
	steps := []struct {
		name  string
		set   *string // nil: only read
		want  string
		other string // state of user 2, which must never change
	}{
		{"none", nil, "", "x"},
		{"set", ptr("awaiting_city"), "awaiting_city", "x"},
		{"overwrite", ptr("awaiting_email"), "awaiting_email", "x"},
		{"clear", ptr(""), "", "x"},
		{"clear again", ptr(""), "", "x"},
		{"set before reopen", ptr("awaiting_nickname"), "awaiting_nickname", "x"},
	}
	if err := db.SetState(2, "x"); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.set != nil {
				if err := db.SetState(1, *s.set); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := db.State(1); err != nil || got != s.want {
				t.Errorf("State(1) = %q, %v; want %q", got, err, s.want)
			}
			if got, _ := db.State(2); got != s.other {
				t.Errorf("State(2) = %q, want %q", got, s.other)
			}
		})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	if got, _ := db.State(1); got != "awaiting_nickname" {
		t.Errorf("State(1) after reopen = %q", got)
	}
}

func ptr[T any](v T) *T { return &v }
