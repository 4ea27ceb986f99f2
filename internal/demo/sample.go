package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Sample is the demo's data set: CRM records to create (in order: accounts,
// contacts, activities) and e-mail messages for the IMAP server.
type Sample struct {
	Records []crm.Record
	Mail    []SampleMail
}

// SampleMail is one message of the demo mailbox.
type SampleMail struct {
	Mailbox string
	Raw     []byte
	Tracked bool // carries $CRMTracked from the start
	Date    time.Time
}

var (
	firstNames = []string{"Anna", "Jürgen", "Zoë", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofía", "Yuki", "Hiroshi", "Amélie",
		"Lars", "Ingrid", "Chen", "Priya", "Arjun", "Fatima", "Omar", "Grace", "Henry", "Isla", "Jack", "Kofi", "Lena"}
	lastNames = []string{"Müller", "Schmidt", "García", "O'Brien", "Nakamura", "Dubois", "Johansson", "Wang", "Patel", "Haddad",
		"Smith", "Johnson", "Brown", "Taylor", "Rossi", "Novak", "Kowalski", "Mensah", "Silva", "Kim"}
	companies = []string{"Contoso", "Fabrikam", "Northwind Traders", "Adventure Works", "Tailspin Toys", "Wide World Importers",
		"Litware", "Proseware", "Alpine Ski House", "Blue Yonder Airlines", "Coho Winery", "Fourth Coffee", "Humongous Insurance",
		"Lucerne Publishing", "Margie's Travel", "Trey Research", "VanArsdel", "Woodgrove Bank", "Wingtip Toys", "Graphic Design Institute"}
	cities = []struct{ city, country, zone string }{
		{"Berlin", "Germany", "Europe/Berlin"}, {"New York", "USA", "America/New_York"}, {"Tokyo", "Japan", "Asia/Tokyo"},
		{"Paris", "France", "Europe/Paris"}, {"São Paulo", "Brazil", "America/Sao_Paulo"}, {"Sydney", "Australia", "Australia/Sydney"},
	}
)

// NewSample returns the demo data owned by user (a systemuser id), with times
// relative to now. The same seed gives the same data.
func NewSample(owner crm.ID, ownerEmail string, now time.Time, seed uint64) Sample {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ownerRef := crm.Ref{Entity: crm.EntitySystemUser, ID: owner}
	var s Sample
	idFor := func(kind string, i int) crm.ID { // stable ids, so a re-seed is idempotent
		return crm.ID(uuidFrom(fmt.Sprintf("pimbridge-demo/%s/%d/%d", kind, seed, i)))
	}

	accounts := make([]crm.Record, 0, 60)
	for i := 0; i < 60; i++ {
		c := cities[i%len(cities)]
		name := companies[i%len(companies)]
		if i >= len(companies) {
			name = fmt.Sprintf("%s %s", name, c.city)
		}
		accounts = append(accounts, crm.Record{Entity: crm.EntityAccount, ID: idFor("account", i), Attrs: map[string]any{
			"name": name, "ownerid": ownerRef, "telephone1": fmt.Sprintf("+1 555 %04d", 1000+i),
			"websiteurl":    "https://" + strings.ToLower(strings.NewReplacer(" ", "", "'", "").Replace(name)) + ".example",
			"address1_city": c.city, "address1_country": c.country,
		}})
	}
	s.Records = append(s.Records, accounts...)

	contacts := make([]crm.Record, 0, 300)
	for i := 0; i < 300; i++ {
		fn, ln := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		acct := accounts[i%len(accounts)]
		c := cities[i%len(cities)]
		attrs := map[string]any{
			"firstname": fn, "lastname": ln, "ownerid": ownerRef,
			"emailaddress1":  fmt.Sprintf("%s.%s.%d@%s", asciiFold(fn), asciiFold(ln), i, "customers.example"),
			"telephone1":     fmt.Sprintf("+49 30 %07d", r.IntN(9999999)),
			"mobilephone":    fmt.Sprintf("+1 917 555 %04d", r.IntN(9999)),
			"jobtitle":       []string{"CEO", "Buyer", "Head of IT", "Account Manager", "Engineer", "CFO"}[r.IntN(6)],
			"address1_line1": fmt.Sprintf("%d Market Street", 1+r.IntN(200)),
			"address1_city":  c.city, "address1_country": c.country,
			"parentcustomerid": crm.Ref{Entity: crm.EntityAccount, ID: acct.ID},
		}
		if i%7 == 0 {
			attrs["birthdate"] = time.Date(1960+r.IntN(40), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
		}
		if i%11 == 0 {
			attrs["description"] = "Met at the trade fair; prefers e-mail.\nFollow up in Q1."
		}
		contacts = append(contacts, crm.Record{Entity: crm.EntityContact, ID: idFor("contact", i), Attrs: attrs})
	}
	s.Records = append(s.Records, contacts...)

	day := now.UTC().Truncate(24 * time.Hour)
	regarding := func(i int) crm.Ref { return crm.Ref{Entity: crm.EntityContact, ID: contacts[i%len(contacts)].ID} }
	for i := 0; i < 60; i++ {
		due := day.Add(time.Duration(i-20) * 24 * time.Hour).Add(17 * time.Hour)
		attrs := map[string]any{
			"subject": fmt.Sprintf("Send proposal #%d", 100+i), "ownerid": ownerRef, "scheduledend": due,
			"prioritycode": int64(i % 3), "regardingobjectid": regarding(i),
		}
		if i%5 == 0 {
			attrs["statecode"], attrs["statuscode"] = int64(1), int64(5) // completed
		}
		s.Records = append(s.Records, crm.Record{Entity: crm.EntityTask, ID: idFor("task", i), Attrs: attrs})
	}
	for i := 0; i < 25; i++ {
		c := contacts[(i*7)%len(contacts)]
		s.Records = append(s.Records, crm.Record{Entity: crm.EntityPhoneCall, ID: idFor("phonecall", i), Attrs: map[string]any{
			"subject": fmt.Sprintf("Call %s %s", c.Attrs["firstname"], c.Attrs["lastname"]), "ownerid": ownerRef,
			"phonenumber": c.Attrs["telephone1"], "directioncode": true,
			"scheduledend": day.Add(time.Duration(i) * 24 * time.Hour).Add(10 * time.Hour), "regardingobjectid": regarding(i * 7),
		}})
	}
	for i := 0; i < 5; i++ {
		s.Records = append(s.Records, crm.Record{Entity: crm.EntityLetter, ID: idFor("letter", i), Attrs: map[string]any{
			"subject": fmt.Sprintf("Contract renewal letter %d", i+1), "ownerid": ownerRef,
			"scheduledend": day.Add(time.Duration(3+i) * 24 * time.Hour), "regardingobjectid": regarding(i * 3),
		}}, crm.Record{Entity: crm.EntityFax, ID: idFor("fax", i), Attrs: map[string]any{
			"subject": fmt.Sprintf("Signed order form %d", i+1), "ownerid": ownerRef, "faxnumber": "+49 30 1234567",
			"scheduledend": day.Add(time.Duration(2+i) * 24 * time.Hour), "regardingobjectid": regarding(i * 5),
		}})
	}
	// Appointments at 09:00 and 14:30 local time in several zones, across
	// the coming weeks (and so across a DST change for part of the year).
	for i := 0; i < 40; i++ {
		c := cities[i%len(cities)]
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			loc = time.UTC
		}
		d := day.Add(time.Duration(i-10) * 24 * time.Hour).In(loc)
		hour, min := 9, 0
		if i%2 == 1 {
			hour, min = 14, 30
		}
		start := time.Date(d.Year(), d.Month(), d.Day(), hour, min, 0, 0, loc).UTC()
		dur := int64([]int{30, 60, 90}[i%3])
		attrs := map[string]any{
			"subject": fmt.Sprintf("Meeting in %s: %s", c.city, companies[i%len(companies)]), "ownerid": ownerRef,
			"location": c.city, "scheduledstart": start, "scheduledend": start.Add(time.Duration(dur) * time.Minute),
			"scheduleddurationminutes": dur, "isalldayevent": false, "regardingobjectid": regarding(i * 2),
			"requiredattendees": []crm.Party{{Party: &crm.Ref{Entity: crm.EntityContact, ID: contacts[(i*2)%len(contacts)].ID},
				Address: contacts[(i*2)%len(contacts)].Attrs["emailaddress1"].(string)}},
			"organizer": []crm.Party{{Party: &ownerRef, Address: ownerEmail}},
		}
		s.Records = append(s.Records, crm.Record{Entity: crm.EntityAppointment, ID: idFor("appointment", i), Attrs: attrs})
	}

	// Mail: customer conversations, a few already tracked.
	for i := 0; i < 30; i++ {
		c := contacts[(i*3)%len(contacts)]
		from := c.Attrs["emailaddress1"].(string)
		date := now.UTC().Add(-time.Duration(30-i) * 7 * time.Hour).Truncate(time.Second)
		box, fromH, toH := "INBOX", from, ownerEmail
		if i%4 == 3 {
			box, fromH, toH = "Sent", ownerEmail, from
		}
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: proposal #%d\r\nDate: %s\r\nMessage-ID: <demo-%d-%d@pimbridge.example>\r\n"+
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nthanks for the proposal #%d. Let's talk next week.\r\n",
			fromH, toH, 100+i, date.Format(time.RFC1123Z), seed, i, 100+i)
		s.Mail = append(s.Mail, SampleMail{Mailbox: box, Raw: []byte(raw), Tracked: i%3 == 0, Date: date})
	}
	return s
}

// asciiFold makes a name usable in an e-mail local part.
func asciiFold(s string) string {
	r := strings.NewReplacer("ü", "u", "ö", "o", "ä", "a", "é", "e", "í", "i", "ë", "e", "'", "", " ", "")
	return strings.ToLower(r.Replace(s))
}
