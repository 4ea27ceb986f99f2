package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newCRMUserCmd(g *globals, cf *crmFlags) *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage CRM users"}
	var db string
	c.PersistentFlags().StringVar(&db, "db", "", "database file (default $XDG_DATA_HOME/pimbridge/crm.db)")

	var roles []string
	var pwStdin bool
	add := &cobra.Command{
		Use:   "add NAME --role ROLE --password-stdin",
		Short: "Create a user; the password is read from the first line of stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !pwStdin {
				return usageErr(errors.New("--password-stdin is required (passwords are never taken as arguments)"))
			}
			line, err := bufio.NewReader(g.stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read password from stdin: %w", err)
			}
			pw := strings.TrimRight(line, "\r\n")
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
				fmt.Fprintf(g.stdout, "%s\t%s\t%s\n", u.Name, u.ID, strings.Join(u.Roles, ","))
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
	c.AddCommand(add, list, assign)
	return c
}
