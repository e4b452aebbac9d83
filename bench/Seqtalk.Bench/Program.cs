using Seqtalk.Bench;

// Seqtalk benchmarks. Modes:
//   gemm [filter]   MatMul kernels at the issue-3 shapes: naive check, GFLOP/s, fraction of the FMA peak.
//   serve [--seconds S] [--model DIR]... [--quick] [--repeat N] [--clients 1,8,64] [--only on|off] [--wait-ms MS] [--client lean|httpclient] [--profile]
//         HTTP replies/s with dynamic batching on vs off (issue 5), one table per --model and a summary of medians; --profile times the stages of a served reply.
//   reply-profile MODEL_DIR DATA   where a greedy reply's time goes; fp32 vs screened and fused paths (ReplyProfile.cs).
//   workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--reply-epochs N]   issue 3's five workloads (Workloads.cs).
//   large-pairs [--rows N] [--seed S] [--out FILE] [--data PATH]   writes an N-row pairs file for the large-input procedure (LargePairs.cs).
if (args.Length > 0 && args[0] == "reply-profile") return ReplyProfile.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "gemm") return GemmBench.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "serve") return ServeBench.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "workloads") return Workloads.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "large-pairs") return LargePairs.Run(args.Skip(1).ToArray());

Console.Error.WriteLine("usage: dotnet run -c Release --project bench/Seqtalk.Bench -- gemm [shape-filter] | serve [--seconds S] [--model DIR]... [--quick] [--repeat N] [--clients 1,8,64] [--only on|off] [--wait-ms MS] [--client lean|httpclient] [--profile] | reply-profile MODEL_DIR DATA | workloads [--threads N] [--json FILE] [--quick] [--data PATH] [--reply-epochs N] | large-pairs [--rows N] [--seed S] [--out FILE]");
return 2;
