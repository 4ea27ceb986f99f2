package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/spf13/cobra"
)

func newCRMUserCmd(g *globals, cf *crmFlags) *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage CRM users"}
	var db string
	c.PersistentFlags().StringVar(&db, "db", "", "database: a SQLite file (default $XDG_DATA_HOME/pimbridge/crm.db) or a postgres:// URL")

	var roles []string
	var pwStdin bool
	add := &cobra.Command{
		Use:   "add NAME --role ROLE --password-stdin",
		Short: "Create a user; the password is read from the first line of stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPasswordStdin(g, pwStdin)
			if err != nil {
				return err
			}
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			u, err := st.CreateUser(cmd.Context(), args[0], pw, roles...)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "created user %s (%s) with roles %s\n", u.Name, u.ID, strings.Join(roles, ","))
			return nil
		},
	}
	add.Flags().StringSliceVar(&roles, "role", nil, "role to give (repeatable: admin, salesperson, or one made with `crm role create`)")
	add.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	add.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.Users(cmd.Context())
			if err != nil {
				return err
			}
			for _, u := range users {
				state := "enabled"
				if u.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(g.stdout, "%s\t%s\t%s\t%s\n", u.Name, u.ID, strings.Join(u.Roles, ","), state)
			}
			return nil
		},
	}
	assign := &cobra.Command{
		Use:   "assign NAME ROLE",
		Short: "Give a user a role",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			return st.AssignRole(cmd.Context(), args[0], args[1])
		},
	}
	// withStore runs fn on the opened store and prints done on success.
	withStore := func(fn func(cmd *cobra.Command, st *crmstore.Store, args []string) error, done string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			st, _, err := openStore(cmd.Context(), cf, db, quietLogger(g))
			if err != nil {
				return err
			}
			defer st.Close()
			if err := fn(cmd, st, args); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, done+"\n", args[0])
			return nil
		}
	}
	unassign := &cobra.Command{
		Use:   "unassign NAME ROLE",
		Short: "Take a role away from a user",
		Args:  cobra.ExactArgs(2),
		RunE: withStore(func(cmd *cobra.Command, st *crmstore.Store, args []string) error {
			return st.RemoveRole(cmd.Context(), args[0], args[1])
		}, "user %s updated"),
	}
	disable := &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a user: logins fail and every token and session ends at once",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, st *crmstore.Store, args []string) error {
			return st.DisableUser(cmd.Context(), args[0], true)
		}, "user %s disabled"),
	}
	enable := &cobra.Command{
		Use:   "enable NAME",
		Short: "Enable a disabled user (tokens issued before stay invalid)",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, st *crmstore.Store, args []string) error {
			return st.DisableUser(cmd.Context(), args[0], false)
		}, "user %s enabled"),
	}
	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME --password-stdin",
		Short: "Set a user's password (first line of stdin); every token and session of the old one ends",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, st *crmstore.Store, args []string) error {
			pw, err := readPasswordStdin(g, passwdStdin)
			if err != nil {
				return err
			}
			return st.SetPassword(cmd.Context(), args[0], pw)
		}, "password of user %s changed"),
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the password from stdin")
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Delete a login; its systemuser record stays, disabled, as the owner of its records",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(func(cmd *cobra.Command, st *crmstore.Store, args []string) error {
			return st.RemoveUser(cmd.Context(), args[0])
		}, "user %s removed"),
	}
	c.AddCommand(add, list, assign, unassign, disable, enable, passwd, remove)
	return c
}

// readPasswordStdin reads a password from the first line of stdin; flag
// is --password-stdin, without which passwords are refused (they are never
// taken as arguments).
func readPasswordStdin(g *globals, flag bool) (string, error) {
	if !flag {
		return "", usageErr(errors.New("--password-stdin is required (passwords are never taken as arguments)"))
	}
	line, err := bufio.NewReader(g.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
