// helm 4, built from helm's own module at the version go.mod pins, for the chart's tests
// (scripts/helm). helm's cmd/helm is a main package, which cannot be imported: this is the
// same few lines, calling the command constructor upstream's main calls.
package main

import (
	"errors"
	"log/slog"
	"os"

	// Client auth plugins (exec, OIDC), as upstream's main loads them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	"helm.sh/helm/v4/pkg/kube"
)

func main() {
	// The field manager helm names itself in server-side apply, whatever this binary is called.
	kube.ManagedFieldsManager = "helm"

	cmd, err := helmcmd.NewRootCmd(os.Stdout, os.Args[1:], helmcmd.SetupLogging)
	if err != nil {
		slog.Warn("command failed", slog.Any("error", err))
		os.Exit(1)
	}
	if err := cmd.Execute(); err != nil {
		if cerr, ok := errors.AsType[helmcmd.CommandError](err); ok {
			os.Exit(cerr.ExitCode)
		}
		os.Exit(1)
	}
}
