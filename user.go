package valex

import "time"

// Role is what a Telegram account may do. Roles come from configuration.
type Role int

const (
	RoleUser Role = iota
	RoleSupport
	RoleAdmin
)

// String returns the role's configuration name.
func (r Role) String() string {
	switch r {
	case RoleSupport:
		return "support"
	case RoleAdmin:
		return "admin"
	default:
		return "user"
	}
}

// Allows reports whether an account with role r may do what needs role need.
// Admins may do everything support staff may.
func (r Role) Allows(need Role) bool { return r >= need }

// User is a registered Telegram account. No password is ever stored: Telegram
// authenticates the account. The personal fields (nickname and the optional
// profile) are encrypted at rest by the store's codec.
type User struct {
	ID           int64 // Telegram user id
	Nickname     string
	Language     string // "en", "ru"
	City         string
	Description  string
	Email        string
	Phone        string // only from Telegram's contact-sharing button
	CreatedAt    time.Time
	LastActiveAt time.Time
}

// ProfileField names an editable profile field.
type ProfileField string

const (
	FieldNickname    ProfileField = "nickname"
	FieldCity        ProfileField = "city"
	FieldDescription ProfileField = "description"
	FieldEmail       ProfileField = "email"
	FieldPhone       ProfileField = "phone"
)

// EditableFields are the fields a user may edit by typing; the phone comes
// only from Telegram's contact-sharing button.
var EditableFields = []ProfileField{FieldNickname, FieldCity, FieldDescription, FieldEmail}

// PendingErasure is an erasure written to the journal and not yet finished:
// the user's key and records are deleted on the next start.
type PendingErasure struct {
	UserID int64
	Ticket uint64 // the erasure request; 0 when none
	At     time.Time
}
