// Command psa-oracle evaluates pod specs with Kubernetes' own Pod Security Standards
// evaluator (k8s.io/pod-security-admission/policy), as a test oracle for the auditor.
//
// Input: JSON lines on stdin, each {"metadata": {...}, "spec": {...}} (ObjectMeta, PodSpec).
// Output: one JSON line per input line, in order:
//
//	{"checks": {"<check id>": {"level": "baseline|restricted", "allowed": bool, "reason": "...", "detail": "..."}},
//	 "baseline": bool, "restricted": bool}
//
// or {"error": "..."} when the line does not decode as the API server would decode it.
// Every registered check (policy.DefaultChecks) is run on its own, at its newest version,
// so the output names which checks fail; "baseline" and "restricted" are the evaluator's
// overall verdicts at the latest policy version (restricted skips the baseline checks it
// overrides, as the admission plugin does).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	sigsjson "sigs.k8s.io/json"
)

type pod struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     corev1.PodSpec    `json:"spec"`
}

type checkOutcome struct {
	Level   string `json:"level"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

type verdict struct {
	Checks     map[string]checkOutcome `json:"checks,omitempty"`
	Baseline   bool                    `json:"baseline"`
	Restricted bool                    `json:"restricted"`
	Error      string                  `json:"error,omitempty"`
}

func main() {
	checks := policy.DefaultChecks()
	evaluator, err := policy.NewEvaluator(checks, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "psa-oracle:", err)
		os.Exit(2)
	}
	latest := func(level api.Level) api.LevelVersion {
		return api.LevelVersion{Level: level, Version: api.LatestVersion()}
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var p pod
		var v verdict
		// Case-sensitive field names, as the API server decodes objects (encoding/json alone
		// would accept "hostnetwork" for "hostNetwork").
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(in.Bytes(), &p); err != nil {
			v.Error = err.Error()
		} else {
			v.Checks = make(map[string]checkOutcome, len(checks))
			for _, c := range checks {
				// Versions are sorted oldest first: the last one is what "latest" evaluates.
				r := c.Versions[len(c.Versions)-1].CheckPod(&p.Metadata, &p.Spec)
				v.Checks[string(c.ID)] = checkOutcome{
					Level: string(c.Level), Allowed: r.Allowed, Reason: r.ForbiddenReason, Detail: r.ForbiddenDetail,
				}
			}
			v.Baseline = policy.AggregateCheckResults(evaluator.EvaluatePod(latest(api.LevelBaseline), &p.Metadata, &p.Spec)).Allowed
			v.Restricted = policy.AggregateCheckResults(evaluator.EvaluatePod(latest(api.LevelRestricted), &p.Metadata, &p.Spec)).Allowed
		}
		if err := enc.Encode(&v); err != nil {
			fmt.Fprintln(os.Stderr, "psa-oracle:", err)
			os.Exit(1)
		}
		// One answer per line, flushed at once: the caller may wait for it before sending more.
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "psa-oracle:", err)
		os.Exit(1)
	}
}
