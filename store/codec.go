package store

import "fmt"

// Codec is the seam every personal field goes through on its way to disk.
// A later codec encrypts with a key per user, so that deleting the key erases
// the data everywhere, backups included.
//
// Seal and Open must not retain or modify their argument: it may be memory
// owned by a bbolt transaction. Open's result may alias sealed; the store
// decodes it before the transaction ends.
type Codec interface {
	Seal(userID int64, plain []byte) ([]byte, error)
	Open(userID int64, sealed []byte) ([]byte, error)
}

// Format bytes that start every sealed value, so a later codec can tell
// which format it is reading and migrate old values.
const (
	formatPlain byte = 1
)

// PlainCodec stores personal fields as they are, behind a format byte.
type PlainCodec struct{}

// Seal returns plain prefixed with the plain format byte.
func (PlainCodec) Seal(_ int64, plain []byte) ([]byte, error) {
	out := make([]byte, 1+len(plain))
	out[0] = formatPlain
	copy(out[1:], plain)
	return out, nil
}

// Open strips the format byte; any other format is an error.
func (PlainCodec) Open(userID int64, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 || sealed[0] != formatPlain {
		return nil, fmt.Errorf("open personal data of user %d: not plain format", userID)
	}
	return sealed[1:], nil
}
