package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/spf13/cobra"
)

func newCRMRoleCmd(g *globals, cf *crmFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "role",
		Short: "Manage roles: privileges (GoOffline, SyncToOutlook, Admin) and per-entity rights",
		Long: `Manage roles.

  pimbridge crm role list
  pimbridge crm role create NAME [--from ROLE]
  pimbridge crm role grant ROLE GoOffline|SyncToOutlook|Admin
  pimbridge crm role revoke ROLE GoOffline|SyncToOutlook|Admin
  pimbridge crm role grant ROLE --entity contact --access read --scope all
  pimbridge crm role revoke ROLE --entity contact --access write
  pimbridge crm role delete ROLE

--entity takes a logical or entity-set name, custom entities (new_project)
included, or * (every entity without its own entry);
--access is create, read, write or delete (repeatable); --scope own or all.`,
	}
	var db string
	c.PersistentFlags().StringVar(&db, "db", "", "database: a SQLite file (default $XDG_DATA_HOME/pimbridge/crm.db) or a postgres:// URL")

	list := &cobra.Command{
		Use:  "list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			roles, err := st.Roles(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(roles)
		},
	}
	var from string
	create := &cobra.Command{
		Use:  "create NAME",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			r := crm.Role{Name: args[0], Privileges: []string{}}
			if from != "" {
				if r, err = st.Role(cmd.Context(), from); err != nil {
					return err
				}
				r.Name = args[0]
			}
			if _, err := st.Role(cmd.Context(), args[0]); err == nil {
				return fmt.Errorf("%w: role %q exists", crm.ErrConflict, args[0])
			}
			return st.SaveRole(cmd.Context(), r)
		},
	}
	create.Flags().StringVar(&from, "from", "", "copy the rights of this role")

	change := func(grant bool) *cobra.Command {
		var entity, scope string
		var access []string
		verb := "revoke"
		if grant {
			verb = "grant"
		}
		cc := &cobra.Command{
			Use:  verb + " ROLE [PRIVILEGE]",
			Args: cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				if (len(args) == 2) == (entity != "") {
					return usageErr(errors.New("give either a PRIVILEGE or --entity with --access"))
				}
				st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
				if err != nil {
					return err
				}
				defer st.Close()
				r, err := st.Role(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if len(args) == 2 {
					p := args[1]
					if !slices.Contains(crmserver.Privileges, p) {
						return usageErr(fmt.Errorf("unknown privilege %q (have %v)", p, crmserver.Privileges))
					}
					r.Privileges = slices.DeleteFunc(r.Privileges, func(x string) bool { return x == p })
					if grant {
						r.Privileges = append(r.Privileges, p)
					}
				} else {
					if len(access) == 0 {
						return usageErr(errors.New("--entity needs --access"))
					}
					if entity != "*" {
						m, _ := st.Metadata(cmd.Context())
						e, err := m.Entity(entity)
						if err != nil {
							return usageErr(err)
						}
						entity = e.Name // rights are keyed by logical name
					}
					sc := crm.ScopeNone
					if grant {
						if sc, err = crm.ParseScope(scope); err != nil {
							return usageErr(err)
						}
					}
					// An entity's own entry replaces the role's "*" entry,
					// so start it from what "*" grants.
					if _, ok := r.Rights[entity]; !ok && entity != "*" {
						for a, s := range r.Rights["*"] {
							x, _ := crm.ParseScope(s)
							r.SetRight(entity, a, x)
						}
					}
					for _, a := range access {
						if !slices.Contains(crmserver.Accesses, crm.Access(a)) {
							return usageErr(fmt.Errorf("unknown access %q (have create, read, write, delete)", a))
						}
						r.SetRight(entity, crm.Access(a), sc)
					}
				}
				if err := st.SaveRole(cmd.Context(), r); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "role %s updated\n", r.Name)
				return nil
			},
		}
		cc.Flags().StringVar(&entity, "entity", "", "entity logical name, or * for every entity")
		cc.Flags().StringSliceVar(&access, "access", nil, "create, read, write or delete (repeatable)")
		if grant {
			cc.Flags().StringVar(&scope, "scope", "own", "own or all")
		}
		return cc
	}
	del := &cobra.Command{
		Use:   "delete ROLE",
		Short: "Delete a role; users who had it lose it (built-in roles cannot be deleted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.DeleteRole(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "role %s deleted\n", args[0])
			return nil
		},
	}
	c.AddCommand(list, create, change(true), change(false), del)
	return c
}
