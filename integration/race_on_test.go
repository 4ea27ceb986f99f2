//go:build race

package integration

// raceDetector is true in a -race build, whose in-process SQLite servers run
// several times slower: the 300-item fault tests then use fewer items
// unless PIMBRIDGE_KILL_POINTS asks for the full run.
const raceDetector = true
