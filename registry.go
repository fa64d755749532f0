package pipeline

// This file holds what a pipeline keeps to find its stages' parts: the
// index from each channel to its record (which stage made it, who reads
// it), and the default names of stages. Both are made so that a small
// pipeline built per request allocates as little as possible.

import (
	"strconv"
	"sync"
)

// chanIndex maps each channel a stage made or reads to its record: the
// first few in an array searched in turn (a small pipeline allocates no
// map), the rest in a map.
type chanIndex struct {
	n   int
	few [8]struct {
		ch  any
		ref *channelRef
	}
	many map[any]*channelRef
}

// get returns ch's record, or nil.
func (c *chanIndex) get(ch any) *channelRef {
	for i := range c.n {
		if c.few[i].ch == ch {
			return c.few[i].ref
		}
	}
	return c.many[ch]
}

// put records ch's record; ch has none yet.
func (c *chanIndex) put(ch any, ref *channelRef) {
	if c.n < len(c.few) {
		c.few[c.n].ch, c.few[c.n].ref = ch, ref
		c.n++
		return
	}
	if c.many == nil {
		c.many = make(map[any]*channelRef)
	}
	c.many[ch] = ref
}

// defaultName returns a stage's name when no Name option gives one: its
// kind and its index ("fanout#2"). The names of the first stages of each
// kind are made once, as pipelines built per request would make them again
// and again.
func defaultName(kind string, index int) string {
	if index > maxCachedName {
		return kind + "#" + strconv.Itoa(index)
	}
	k := nameKey{kind, index}
	names.mu.Lock()
	defer names.mu.Unlock()
	name, ok := names.m[k]
	if !ok {
		name = kind + "#" + strconv.Itoa(index)
		names.m[k] = name
	}
	return name
}

// maxCachedName bounds the names kept: the kinds times this many indexes.
const maxCachedName = 32

type nameKey struct {
	kind  string
	index int
}

var names = struct {
	mu sync.Mutex
	m  map[nameKey]string
}{m: make(map[nameKey]string)}
