package mapping

import (
	"strconv"
	"strings"
)

// statusLook is how a CRM statuscode appears on the PIM side.
type statusLook struct {
	status string // STATUS
	transp string // TRANSP (VEVENT)
	busy   string // X-MICROSOFT-CDO-BUSYSTATUS (VEVENT), "" = not written
}

// look returns the PIM appearance of (entity, statuscode).
func look(entity string, code int64) statusLook {
	e := entityMeta(entity)
	st := e.StateOfStatus(code)
	if entity == "appointment" {
		switch code {
		case 1:
			return statusLook{"CONFIRMED", "TRANSPARENT", "FREE"}
		case 2:
			return statusLook{"TENTATIVE", "OPAQUE", "TENTATIVE"}
		case 4:
			return statusLook{"CANCELLED", "OPAQUE", "BUSY"}
		case 6:
			return statusLook{"CONFIRMED", "OPAQUE", "OOF"}
		}
		return statusLook{"CONFIRMED", "OPAQUE", "BUSY"} // busy, completed
	}
	switch {
	case st == nil:
		return statusLook{status: "NEEDS-ACTION"}
	case st.Value == 1:
		return statusLook{status: "COMPLETED"}
	case st.Value == 2:
		return statusLook{status: "CANCELLED"}
	case entity == "task" && code == 3:
		return statusLook{status: "IN-PROCESS"}
	}
	return statusLook{status: "NEEDS-ACTION"}
}

// status derives (statecode, statuscode) from the PIM properties. An
// X-CRM-STATUSCODE written by pimbridge is honoured when it still looks the
// same on the PIM side, so that codes the PIM side cannot express
// (completed appointment, deferred task) survive a round trip.
func (it *calItem) status() (int64, int64) {
	c := it.c
	e := entityMeta(it.entity)
	upper := func(name string) string {
		if l := c.prop(name); l != nil {
			return strings.ToUpper(strings.TrimSpace(l.value))
		}
		return ""
	}
	var code int64
	if it.entity == "appointment" {
		code = 5
		switch {
		case upper("STATUS") == "CANCELLED":
			code = 4
		case upper("STATUS") == "TENTATIVE" || upper("X-MICROSOFT-CDO-BUSYSTATUS") == "TENTATIVE":
			code = 2
		case upper("X-MICROSOFT-CDO-BUSYSTATUS") == "OOF":
			code = 6
		case upper("TRANSP") == "TRANSPARENT" || upper("X-MICROSOFT-CDO-BUSYSTATUS") == "FREE":
			code = 1
		}
	} else {
		stateOf := func(v int64) int64 { return e.State(v).DefaultStatus }
		switch s := upper("STATUS"); {
		case s == "COMPLETED" || s == "" && (upper("PERCENT-COMPLETE") == "100" || c.prop("COMPLETED") != nil):
			code = stateOf(1)
		case s == "CANCELLED":
			code = stateOf(2)
		case s == "IN-PROCESS" && it.entity == "task":
			code = 3
		default:
			code = stateOf(0)
		}
	}
	if l := c.prop("X-CRM-STATUSCODE"); l != nil {
		if hint, err := strconv.ParseInt(strings.TrimSpace(l.value), 10, 64); err == nil && e.StateOfStatus(hint) != nil {
			if sameLook(it.entity, hint, code) {
				code = hint
			}
		}
	}
	return e.StateOfStatus(code).Value, code
}

func sameLook(entity string, a, b int64) bool {
	la, lb := look(entity, a), look(entity, b)
	if entity == "appointment" {
		return la == lb
	}
	return la.status == lb.status
}
