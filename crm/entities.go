package crm

import "math"

// Entity logical names.
const (
	EntitySystemUser  = "systemuser"
	EntityAccount     = "account"
	EntityContact     = "contact"
	EntityTask        = "task"
	EntityPhoneCall   = "phonecall"
	EntityLetter      = "letter"
	EntityFax         = "fax"
	EntityAppointment = "appointment"
	EntityEmail       = "email"
	EntityAttachment  = "activitymimeattachment"
)

// ActivityEntities lists the activity entities, which share activityid and
// the common activity attributes.
var ActivityEntities = []string{EntityTask, EntityPhoneCall, EntityLetter, EntityFax, EntityAppointment, EntityEmail}

// Priority codes of activities.
const (
	PriorityLow    int64 = 0
	PriorityNormal int64 = 1
	PriorityHigh   int64 = 2
)

// builtinSetNames maps the logical name of each built-in entity to its
// entity-set name (lookups only ever point at built-in entities).
var builtinSetNames = func() map[string]string {
	m := map[string]string{}
	for _, e := range Builtin().Entities {
		m[e.Name] = e.SetName
	}
	return m
}()

// Builtin returns the metadata every organization starts with (version 1).
// Each call returns a fresh copy.
func Builtin() *Metadata {
	m := &Metadata{Version: 1}
	m.Entities = []*Entity{
		systemUser(), account(), contact(),
		task(), phoneCall(), letter(), fax(), appointment(), email(),
		attachment(),
	}
	m.RebuildRelationships()
	return m
}

func str(name string, max int) Attribute {
	return Attribute{Name: name, Type: TypeString, MaxLength: max}
}
func memo(name string, max int) Attribute {
	return Attribute{Name: name, Type: TypeMemo, MaxLength: max}
}
func lookup(name string, targets ...string) Attribute {
	return Attribute{Name: name, Type: TypeLookup, Targets: targets}
}
func typed(name string, t AttrType) Attribute { return Attribute{Name: name, Type: t} }

// ranged is an integer attribute with bounds (Dataverse's MinValue and
// MaxValue).
func ranged(name string, lo, hi int64) Attribute {
	return Attribute{Name: name, Type: TypeInteger, MinValue: &lo, MaxValue: &hi}
}
func party(name string) Attribute { return Attribute{Name: name, Type: TypePartyList} }

// common returns the attributes every entity has: its primary key and the
// system columns.
func common(pk string) []Attribute {
	return []Attribute{
		{Name: pk, Type: TypeUniqueID, System: true},
		{Name: "createdon", Type: TypeDateTime, System: true},
		{Name: "modifiedon", Type: TypeDateTime, System: true},
		{Name: "versionnumber", Type: TypeBigInt, System: true},
		{Name: "ownerid", Type: TypeOwner, Targets: []string{EntitySystemUser}},
	}
}

var activeStates = []State{
	{Value: 0, Name: "Active", DefaultStatus: 1, Statuses: []Option{{1, "Active"}}},
	{Value: 1, Name: "Inactive", DefaultStatus: 2, Statuses: []Option{{2, "Inactive"}}},
}

func systemUser() *Entity {
	return &Entity{
		Name: EntitySystemUser, SetName: "systemusers", PrimaryKey: "systemuserid", PrimaryName: "fullname",
		Attributes: append(common("systemuserid"),
			Attribute{Name: "domainname", Type: TypeString, MaxLength: 1024, Required: true},
			str("fullname", 200), str("firstname", 64), str("lastname", 64),
			str("internalemailaddress", 100),
			typed("isdisabled", TypeBoolean),
		),
	}
}

func account() *Entity {
	return &Entity{
		Name: EntityAccount, SetName: "accounts", PrimaryKey: "accountid", PrimaryName: "name",
		Attributes: append(common("accountid"),
			Attribute{Name: "name", Type: TypeString, MaxLength: 160, Required: true},
			str("accountnumber", 20), str("emailaddress1", 100), str("telephone1", 50), str("fax", 50),
			str("websiteurl", 200),
			str("address1_line1", 250), str("address1_line2", 250), str("address1_line3", 250),
			str("address1_city", 80), str("address1_stateorprovince", 50), str("address1_postalcode", 20),
			str("address1_country", 80), str("address1_postofficebox", 20),
			memo("description", 2000),
			lookup("parentaccountid", EntityAccount),
			lookup("primarycontactid", EntityContact),
			typed("statecode", TypeState), typed("statuscode", TypeStatus),
		),
		States: activeStates,
	}
}

// contact carries every attribute of the contact mapping (mapping.MappedFields).
func contact() *Entity {
	return &Entity{
		Name: EntityContact, SetName: "contacts", PrimaryKey: "contactid", PrimaryName: "fullname",
		Attributes: append(common("contactid"),
			Attribute{Name: "lastname", Type: TypeString, MaxLength: 50, Required: true},
			str("firstname", 50), str("middlename", 50), str("fullname", 160), str("nickname", 50),
			str("salutation", 100), str("suffix", 10),
			str("yomifirstname", 150), str("yomilastname", 150),
			str("jobtitle", 100), str("department", 100),
			str("emailaddress1", 100), str("emailaddress2", 100), str("emailaddress3", 100),
			str("telephone1", 50), str("telephone2", 50), str("telephone3", 50),
			str("mobilephone", 50), str("fax", 50), str("pager", 50),
			str("assistantname", 100), str("assistantphone", 50),
			str("managername", 100), str("spousesname", 100), str("childrensnames", 255),
			str("governmentid", 50), str("ftpsiteurl", 200), str("websiteurl", 200),
			typed("birthdate", TypeDateOnly), typed("anniversary", TypeDateOnly),
			str("address1_line1", 250), str("address1_line2", 250), str("address1_line3", 250),
			str("address1_city", 80), str("address1_stateorprovince", 50), str("address1_postalcode", 20),
			str("address1_country", 80), str("address1_postofficebox", 20),
			memo("description", 2000),
			lookup("parentcustomerid", EntityAccount, EntityContact),
			typed("statecode", TypeState), typed("statuscode", TypeStatus),
		),
		States: activeStates,
	}
}

// activity returns an activity entity with the shared activity attributes,
// the given extra attributes and states.
func activity(name, set string, states []State, extra ...Attribute) *Entity {
	attrs := append(common("activityid"),
		Attribute{Name: "subject", Type: TypeString, MaxLength: 400},
		memo("description", 100000),
		typed("scheduledstart", TypeDateTime), typed("scheduledend", TypeDateTime),
		typed("actualstart", TypeDateTime), typed("actualend", TypeDateTime),
		ranged("actualdurationminutes", 0, math.MaxInt32),
		Attribute{Name: "prioritycode", Type: TypePicklist, Options: []Option{{PriorityLow, "Low"}, {PriorityNormal, "Normal"}, {PriorityHigh, "High"}}},
		typed("statecode", TypeState), typed("statuscode", TypeStatus),
		lookup("regardingobjectid", EntityAccount, EntityContact),
		Attribute{Name: "activitytypecode", Type: TypeString, MaxLength: 64, System: true},
	)
	return &Entity{
		Name: name, SetName: set, PrimaryKey: "activityid", PrimaryName: "subject", IsActivity: true,
		Attributes: append(attrs, extra...), States: states,
	}
}

func task() *Entity {
	return activity(EntityTask, "tasks", []State{
		{Value: 0, Name: "Open", DefaultStatus: 2, Statuses: []Option{{2, "Not Started"}, {3, "In Progress"}, {4, "Waiting on someone else"}, {7, "Deferred"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 5, Statuses: []Option{{5, "Completed"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 6, Statuses: []Option{{6, "Canceled"}}, Final: true},
	}, ranged("percentcomplete", 0, 100))
}

func phoneCall() *Entity {
	return activity(EntityPhoneCall, "phonecalls", []State{
		{Value: 0, Name: "Open", DefaultStatus: 1, Statuses: []Option{{1, "Open"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 2, Statuses: []Option{{2, "Made"}, {4, "Received"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 3, Statuses: []Option{{3, "Canceled"}}, Final: true},
	}, str("phonenumber", 200), typed("directioncode", TypeBoolean), party("from"), party("to"))
}

func letter() *Entity {
	return activity(EntityLetter, "letters", []State{
		{Value: 0, Name: "Open", DefaultStatus: 1, Statuses: []Option{{1, "Open"}, {2, "Draft"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 4, Statuses: []Option{{3, "Received"}, {4, "Sent"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 5, Statuses: []Option{{5, "Canceled"}}, Final: true},
	}, memo("address", 200), typed("directioncode", TypeBoolean), party("from"), party("to"))
}

func fax() *Entity {
	return activity(EntityFax, "faxes", []State{
		{Value: 0, Name: "Open", DefaultStatus: 1, Statuses: []Option{{1, "Open"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 3, Statuses: []Option{{2, "Completed"}, {3, "Sent"}, {4, "Received"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 5, Statuses: []Option{{5, "Canceled"}}, Final: true},
	}, str("faxnumber", 200), ranged("numberofpages", 0, math.MaxInt32), typed("directioncode", TypeBoolean), party("from"), party("to"))
}

// Appointment states. Open (free/tentative) and Scheduled (busy/out of
// office) are both "not yet happened"; the deletion rules treat both as open.
func appointment() *Entity {
	return activity(EntityAppointment, "appointments", []State{
		{Value: 0, Name: "Open", DefaultStatus: 1, Statuses: []Option{{1, "Free"}, {2, "Tentative"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 3, Statuses: []Option{{3, "Completed"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 4, Statuses: []Option{{4, "Canceled"}}, Final: true},
		{Value: 3, Name: "Scheduled", DefaultStatus: 5, Statuses: []Option{{5, "Busy"}, {6, "Out of Office"}}},
	},
		str("location", 200),
		ranged("scheduleddurationminutes", 0, math.MaxInt32),
		typed("isalldayevent", TypeBoolean),
		// recurrencepattern holds the RRULE, RDATE and EXDATE lines of a
		// recurring series, as iCalendar content lines joined by "\n".
		memo("recurrencepattern", 10000),
		party("organizer"), party("requiredattendees"), party("optionalattendees"),
	)
}

func email() *Entity {
	return activity(EntityEmail, "emails", []State{
		{Value: 0, Name: "Open", DefaultStatus: 1, Statuses: []Option{{1, "Draft"}, {8, "Failed"}}},
		{Value: 1, Name: "Completed", DefaultStatus: 4, Statuses: []Option{{2, "Completed"}, {3, "Sent"}, {4, "Received"}, {6, "Pending Send"}, {7, "Sending"}}, Final: true},
		{Value: 2, Name: "Canceled", DefaultStatus: 5, Statuses: []Option{{5, "Canceled"}}, Final: true},
	},
		// description holds the text body; descriptionhtml the HTML body.
		memo("descriptionhtml", 1048576),
		str("messageid", 320), str("inreplyto", 320), memo("references", 10000),
		str("sender", 250), memo("torecipients", 10000),
		typed("senton", TypeDateTime),
		typed("directioncode", TypeBoolean), // true: outgoing
		party("from"), party("to"), party("cc"), party("bcc"),
	)
}

func attachment() *Entity {
	return &Entity{
		Name: EntityAttachment, SetName: "activitymimeattachments", PrimaryKey: "activitymimeattachmentid", PrimaryName: "filename",
		Attributes: append(common("activitymimeattachmentid"),
			Attribute{Name: "objectid", Type: TypeLookup, Targets: []string{EntityEmail}, Required: true},
			str("filename", 255), str("mimetype", 256),
			ranged("filesize", 0, math.MaxInt32),
			typed("body", TypeBinary),
		),
	}
}
