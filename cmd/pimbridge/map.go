package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/mapping"
)

func newMapCmd(g *globals) *cobra.Command {
	var to, entity, patch string
	var outgoing bool
	cmd := &cobra.Command{
		Use:   "map FILE | map --to vcard|ical --entity NAME FILE.json | map --patch RAW FILE.json",
		Short: "Map a vCard, iCalendar or e-mail file to CRM JSON, or CRM JSON to a PIM object",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			switch {
			case patch != "":
				raw, err := os.ReadFile(patch)
				if err != nil {
					return err
				}
				rec, err := readRecordJSON(data, entity, patch)
				if err != nil {
					return err
				}
				var out []byte
				if rec.Entity == crm.EntityContact {
					out, err = mapping.PatchVCard(raw, rec, nil)
				} else {
					out, err = mapping.PatchICal(raw, rec, nil)
				}
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(out)
				return err
			case to != "":
				if entity == "" {
					return usageErr(errors.New("--to needs --entity"))
				}
				rec, err := readRecordJSON(data, entity, "")
				if err != nil {
					return err
				}
				var out []byte
				switch to {
				case "vcard":
					out, err = mapping.NewVCard(rec, nil)
				case "ical":
					out, err = mapping.NewICal(rec, nil)
				default:
					return usageErr(fmt.Errorf("--to %q: want vcard or ical", to))
				}
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(out)
				return err
			}
			return mapFile(g, args[0], data, outgoing)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "write a new object: vcard or ical")
	cmd.Flags().StringVar(&entity, "entity", "", "entity of FILE.json (contact, task, phonecall, letter, fax, appointment)")
	cmd.Flags().StringVar(&patch, "patch", "", "raw vCard or iCalendar file to apply FILE.json to")
	cmd.Flags().BoolVar(&outgoing, "outgoing", false, "e-mail: the message was sent by the user")
	return cmd
}

// readRecordJSON reads a record in crm's JSON form. Without --entity the
// entity is taken from the raw file's kind (vCard: contact) or guessed.
func readRecordJSON(data []byte, entity, raw string) (crm.Record, error) {
	if entity == "" {
		switch strings.ToLower(filepath.Ext(raw)) {
		case ".vcf", ".vcard":
			entity = crm.EntityContact
		default:
			var probe map[string]any
			_ = json.Unmarshal(data, &probe)
			entity = crm.EntityTask
			if _, ok := probe["location"]; ok {
				entity = crm.EntityAppointment
			}
			if _, ok := probe["isalldayevent"]; ok {
				entity = crm.EntityAppointment
			}
		}
	}
	e, err := crm.Builtin().Entity(entity)
	if err != nil {
		return crm.Record{}, usageErr(err)
	}
	return e.UnmarshalRecord(data)
}

func mapFile(g *globals, name string, data []byte, outgoing bool) error {
	md := crm.Builtin()
	var recs []crm.Record
	var atts []crm.Record
	var defects []mapping.Defect
	switch strings.ToLower(filepath.Ext(name)) {
	case ".vcf", ".vcard":
		rs, err := mapping.VCardToCRM(data, nil)
		if err != nil {
			return err
		}
		for _, r := range rs {
			recs = append(recs, r.Record)
			defects = append(defects, r.Defects...)
		}
	case ".ics", ".ical":
		rs, err := mapping.ICalToCRM(data, nil)
		if err != nil {
			return err
		}
		for _, r := range rs {
			recs = append(recs, r.Record)
			defects = append(defects, r.Defects...)
		}
	case ".eml", ".msg", "":
		em, err := mapping.MessageToCRM(data, outgoing, nil)
		if err != nil {
			return err
		}
		recs = append(recs, em.Record)
		atts = em.Attachments
		defects = em.Defects
	default:
		return usageErr(fmt.Errorf("%s: want a .vcf, .ics or .eml file", name))
	}
	// What was repaired on the way: on stderr, so stdout stays JSON.
	for _, d := range defects {
		fmt.Fprintf(g.stderr, "%s: defect: %s\n", name, d)
	}
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, r := range append(recs, atts...) {
		e, err := md.Entity(r.Entity)
		if err != nil {
			return err
		}
		b, err := e.MarshalRecord(r)
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
		buf.Write(b)
	}
	buf.WriteString("\n]\n")
	_, err := g.stdout.Write(buf.Bytes())
	return err
}
