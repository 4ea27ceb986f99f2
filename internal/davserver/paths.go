package davserver

import (
	"net/url"
	"strings"
)

// Home-set segment names of the URL layout.
const (
	contactsHome  = "contacts"
	calendarsHome = "calendars"
)

// davPath is a parsed request path of the fixed layout
//
//	/                                  root      (depth 0)
//	/<user>/                           principal (depth 1)
//	/<user>/contacts/ | calendars/     home set  (depth 2)
//	/<user>/<home>/<collection>/       collection (depth 3)
//	/<user>/<home>/<collection>/<obj>  object    (depth 4)
//
// go-webdav's handlers infer the resource type from the same depths.
type davPath struct {
	User  string
	Kind  string // kindAddressBook or kindCalendar from depth 2 on
	Coll  string
	Obj   string
	Depth int
}

func kindOfHome(seg string) string {
	switch seg {
	case contactsHome:
		return kindAddressBook
	case calendarsHome:
		return kindCalendar
	}
	return ""
}

func homeOfKind(kind string) string {
	if kind == kindCalendar {
		return calendarsHome
	}
	return contactsHome
}

// parsePath parses an unescaped URL path. It reports false for paths
// outside the layout.
func parsePath(p string) (davPath, bool) {
	if !strings.HasPrefix(p, "/") {
		return davPath{}, false
	}
	trimmed := strings.Trim(p, "/")
	if trimmed == "" {
		return davPath{}, true
	}
	segs := strings.Split(trimmed, "/")
	if len(segs) > 4 {
		return davPath{}, false
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return davPath{}, false
		}
	}
	dp := davPath{User: segs[0], Depth: len(segs)}
	if len(segs) >= 2 {
		dp.Kind = kindOfHome(segs[1])
		if dp.Kind == "" {
			return davPath{}, false
		}
	}
	if len(segs) >= 3 {
		dp.Coll = segs[2]
	}
	if len(segs) == 4 {
		if strings.HasSuffix(p, "/") || !validObjectName(segs[3]) {
			return davPath{}, false
		}
		dp.Obj = segs[3]
	}
	return dp, true
}

func principalPath(user string) string { return "/" + user + "/" }

func homePath(user, kind string) string { return "/" + user + "/" + homeOfKind(kind) + "/" }

func collectionPath(user, kind, coll string) string { return homePath(user, kind) + coll + "/" }

// String returns the unescaped canonical path.
func (p davPath) String() string {
	switch p.Depth {
	case 0:
		return "/"
	case 1:
		return principalPath(p.User)
	case 2:
		return homePath(p.User, p.Kind)
	case 3:
		return collectionPath(p.User, p.Kind, p.Coll)
	}
	return collectionPath(p.User, p.Kind, p.Coll) + p.Obj
}

// escapePath escapes an unescaped path for use as an href.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// hrefPath returns the unescaped path of an href that is either a path or
// an absolute URL.
func hrefPath(href string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", false
	}
	return u.Path, true
}
