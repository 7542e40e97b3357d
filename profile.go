package valex

import (
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Profile limits: long enough for real values, short enough to keep abuse out.
const (
	MaxNicknameLen    = 64
	MaxCityLen        = 64
	MaxDescriptionLen = 500
	MaxEmailLen       = 254
)

// ValidateProfileField checks a value a user typed for a profile field and
// returns it trimmed, or a UserError naming what is wrong.
func ValidateProfileField(f ProfileField, value string) (string, error) {
	v := strings.TrimSpace(value)
	limit := 0
	switch f {
	case FieldNickname:
		limit = MaxNicknameLen
	case FieldCity:
		limit = MaxCityLen
	case FieldDescription:
		limit = MaxDescriptionLen
	case FieldEmail:
		limit = MaxEmailLen
	default:
		return "", Errorf("profile.unknown_field", nil)
	}
	if v == "" && f == FieldNickname {
		return "", Errorf("profile.empty", nil)
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return "", Errorf("profile.too_long", map[string]any{"Max": limit})
	}
	if f == FieldEmail && v != "" {
		addr, err := mail.ParseAddress(v)
		if err != nil || addr.Address != v || !strings.Contains(v, ".") {
			return "", Errorf("profile.bad_email", nil)
		}
	}
	return v, nil
}

// Apply sets field f of u to v (already validated).
func (u *User) Apply(f ProfileField, v string) {
	switch f {
	case FieldNickname:
		u.Nickname = v
	case FieldCity:
		u.City = v
	case FieldDescription:
		u.Description = v
	case FieldEmail:
		u.Email = v
	case FieldPhone:
		u.Phone = v
	}
}
