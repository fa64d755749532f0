package natsjs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNumDelivered_ReadsTheDeliveryCountOfEveryAckSubjectForm(t *testing.T) {
	tests := []struct {
		name, reply string
		want        uint64
		ok          bool
	}{
		{"v1", "$JS.ACK.ORDERS.billing.3.17.12.1700000000000000000.5", 3, true},
		{"v2", "$JS.ACK._.HASH.ORDERS.billing.2.17.12.1700000000000000000.5.xyz", 2, true},
		{"v2 without the random token", "$JS.ACK.hub.HASH.ORDERS.billing.7.17.12.1700000000000000000.5", 7, true},
		{"not an ack subject", "_INBOX.abc", 0, false},
		{"too few tokens", "$JS.ACK.ORDERS.billing.3", 0, false},
		{"ten tokens", "$JS.ACK.a.b.ORDERS.billing.3.17.12.1", 0, false},
		{"not a number", "$JS.ACK.ORDERS.billing.x.17.12.1700000000000000000.5", 0, false},
		{"zero", "$JS.ACK.ORDERS.billing.0.17.12.1700000000000000000.5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := numDelivered(tt.reply)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, n)
		})
	}
}
