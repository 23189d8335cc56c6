package sdk_test

import (
	"context"
	"fmt"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

// hello launches "echo hello" on every offer it gets until one task
// finished, then stops. It is the example in docs/sdk.md.
type hello struct{ done bool }

func (h *hello) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	res, _ := sdk.ParseResources("0.1", "32Mi")
	if h.done || !sdk.Fits(offer, res) {
		_ = d.Decline(ctx, offer, 30)
		return
	}
	task := sdk.TaskInfo{Resources: res, Command: sdk.Shell("echo hello")}
	if _, err := d.Accept(ctx, offer, []sdk.TaskInfo{task}, sdk.Filters{}); err != nil {
		fmt.Println("accept:", err) // ErrOfferGone: wait for the next offer
	}
}

func (h *hello) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}

func (h *hello) TaskUpdate(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	fmt.Println(t.Name, t.Status.State, t.Status.Reason)
	if !sdk.IsTerminal(t.Status.State) {
		return
	}
	_ = d.Acknowledge(ctx, t) // delete the ended Task
	if t.Status.State == agorav1.TaskFinished {
		h.done = true
		d.Stop()
	}
}

func Example() {
	ctx := context.Background()
	d, err := sdk.Connect(ctx, sdk.Config{Name: "hello", Namespace: "demo"})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	if err := d.Run(ctx, &hello{}); err != nil {
		panic(err)
	}
}
