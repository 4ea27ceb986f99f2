//go:build race

package bridge_test

// raceDetector is true in a -race build, whose in-process SQLite servers
// run several times slower: the randomized end-to-end check then runs a
// few seeds only; `make check` runs the full count without -race
// (the `randomized` target).
const raceDetector = true
