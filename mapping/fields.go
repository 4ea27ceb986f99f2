package mapping

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Mapped fields per entity (the Dynamics client's data mapping tables). These are the
// CRM attributes a PIM object carries and the merge compares; everything
// else on either side is left alone.
var (
	contactFields = []string{
		"lastname", "firstname", "middlename", "salutation", "nickname",
		"yomifirstname", "yomilastname", "jobtitle", "department",
		"emailaddress1", "emailaddress2", "emailaddress3",
		"telephone1", "telephone2", "telephone3", "mobilephone", "fax", "pager",
		"assistantname", "assistantphone", "managername", "spousesname", "childrensnames",
		"governmentid", "ftpsiteurl", "websiteurl", "birthdate", "anniversary",
		"address1_line1", "address1_line2", "address1_line3", "address1_city",
		"address1_stateorprovince", "address1_postalcode", "address1_country",
		"address1_postofficebox", "description",
	}
	taskFields = []string{
		"subject", "description", "scheduledstart", "scheduledend", "prioritycode",
		"statecode", "statuscode",
	}
	appointmentFields = []string{
		"subject", "description", "location", "scheduledstart", "scheduledend",
		"scheduleddurationminutes", "isalldayevent", "prioritycode",
		"organizer", "requiredattendees", "optionalattendees",
		"statecode", "statuscode", "recurrencepattern",
	}
	emailFields = []string{
		"subject", "description", "descriptionhtml", "messageid", "inreplyto", "references",
		"sender", "torecipients", "senton", "directioncode", "from", "to", "cc", "bcc",
	}
)

// MappedFields returns the CRM attributes that entity's PIM form carries,
// in a stable order, or nil for an entity that is not mapped. The slice is a
// copy.
func MappedFields(entity string) []string {
	switch entity {
	case crm.EntityContact:
		return slices.Clone(contactFields)
	case crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax:
		return slices.Clone(taskFields)
	case crm.EntityAppointment:
		return slices.Clone(appointmentFields)
	case crm.EntityEmail:
		return slices.Clone(emailFields)
	}
	return nil
}

var builtin = crm.Builtin()

func entityMeta(name string) *crm.Entity {
	e, err := builtin.Entity(name)
	if err != nil {
		return nil
	}
	return e
}

// MapObject maps a PIM object by its content type (text/vcard, text/x-vcard,
// text/calendar) to the mapped CRM fields of the record(s) it holds. It is
// the function the merge uses to get "P" (the PIM values mapped to CRM
// fields) for a pair.
func MapObject(contentType string, raw []byte, opts *Options) ([]Result, error) {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	switch ct {
	case "text/vcard", "text/x-vcard", "text/directory":
		return VCardToCRM(raw, opts)
	case "text/calendar":
		return ICalToCRM(raw, opts)
	}
	return nil, fmt.Errorf("mapping: %w: content type %q", crm.ErrInvalidArgument, contentType)
}
