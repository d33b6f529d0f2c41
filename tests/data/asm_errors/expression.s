	li r3, (1 + 2
	li r3, 4 / 0
	li r3, 5 $ 2
	.long 1, , 2
