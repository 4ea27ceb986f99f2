//go:build race

package mailtrack

// raceDetector is true in a -race build: TestRandomizedMail then runs a
// few seeds only (make randomized runs the full count without -race).
const raceDetector = true
