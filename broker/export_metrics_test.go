package broker

// IsLoopbackForTest is isLoopback, for the metrics tests.
var IsLoopbackForTest = isLoopback

// RefusalNamesForTest are the reason label values of mqttctl_refusals_total.
var RefusalNamesForTest = refusalNames[:]
