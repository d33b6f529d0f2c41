	lis r3, buffer@ha
	b missing_label
buffer:	.long nowhere + 4
