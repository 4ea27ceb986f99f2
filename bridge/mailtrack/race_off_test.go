//go:build !race

package mailtrack

const raceDetector = false
