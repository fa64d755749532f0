package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyedByAccount groups results ("account seq") by account, in the order
// they came.
func keyedByAccount(out []string) map[string][]int {
	m := map[string][]int{}
	for _, r := range out {
		var acct string
		var seq int
		_, err := fmt.Sscanf(r, "%s %d", &acct, &seq)
		if err == nil {
			m[acct] = append(m[acct], seq)
		}
	}
	return m
}

func TestKeyed_BothApplyEachAccountsEventsOnceInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for range 20 {
		accounts := 1 + r.IntN(6)
		var events []deposit
		next := map[string]int{}
		for range r.IntN(200) {
			a := fmt.Sprint("acct", r.IntN(accounts))
			events = append(events, deposit{a, next[a]})
			next[a]++
		}
		want := map[string][]int{}
		for a, n := range next {
			for i := range n {
				want[a] = append(want[a], i)
			}
		}
		apply := func(e deposit) string {
			if e.Seq%5 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
			return fmt.Sprintf("%s %d", e.Account, e.Seq)
		}
		workers := 1 + r.IntN(5)
		hand := keyedHand(events, workers, apply)
		pipe, err := keyedPipe(events, workers, apply)
		require.NoError(t, err)
		assert.Equal(t, want, keyedByAccount(hand), "hand, %d workers", workers)
		assert.Equal(t, want, keyedByAccount(pipe), "pipeline, %d workers", workers)
		assert.Equal(t, want, keyedByAccount(shardedByKey(events, workers, apply)), "sharded, %d workers", workers)
	}
}

// The pitfall: sharded by key, the order holds but the slow account
// stalls the others; neither careful version lets it.
func TestKeyed_PitfallShardingStallsTheAccountsBehindTheSlowOne(t *testing.T) {
	firstAlice := func(out []string) int {
		return slices.IndexFunc(out, func(r string) bool { return strings.HasPrefix(r, "alice ") })
	}
	events := keyedEvents()
	pipe, err := keyedPipe(events, 3, keyedApply)
	require.NoError(t, err)
	assert.Equal(t, 30, firstAlice(keyedHand(events, 3, keyedApply)), "hand: the 30 other events first")
	assert.Equal(t, 30, firstAlice(pipe), "pipeline: the 30 other events first")
	assert.LessOrEqual(t, firstAlice(shardedByKey(events, 3, keyedApply)), 20,
		"sharded: the feeding loop waited on alice's worker, and the events after it with it")
}
