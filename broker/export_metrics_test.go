package broker

// RefusalNamesForTest are the reason label values of mqttctl_refusals_total.
var RefusalNamesForTest = refusalNames[:]
