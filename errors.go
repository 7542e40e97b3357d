package valex

import (
	"errors"
	"fmt"
)

// Sentinel errors owned by the domain.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// UserError is an error the user should see: a locale key and its arguments.
// Anything that is not a UserError becomes a localized "something went wrong"
// with the detail only in the log.
type UserError struct {
	Key  string
	Args map[string]any
}

func (e *UserError) Error() string { return fmt.Sprintf("user error %s", e.Key) }

// Errorf returns a UserError for the locale key with arguments.
func Errorf(key string, args map[string]any) error { return &UserError{Key: key, Args: args} }

// AsUserError returns the UserError in err's chain, if any.
func AsUserError(err error) (*UserError, bool) {
	var ue *UserError
	ok := errors.As(err, &ue)
	return ue, ok
}
