package demo

import "github.com/google/uuid"

// uuidFrom returns a name-based (version 5) UUID, so that sample records
// keep their ids across runs.
func uuidFrom(name string) uuid.UUID {
	return uuid.NewSHA1(uuid.MustParse("6f1c1f0e-5c3b-4d5e-9a57-2f7c0d1e8b44"), []byte(name))
}
