#!/usr/bin/env python3
"""Writes the LambdaThrottlesAlarm* resources of template.yaml: one alarm per seven functions
(an alarm's metric math takes ten queries), each summing its functions' Throttles by
FunctionName, so another stack's throttles never page. Run it after adding a function:
    python3 scripts/throttle-alarms.py
The template test checks every function is covered."""
import os
import re
p = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'template.yaml')
s=open(p).read()
start=s.index("  # Lambda refused invocations of this stack's functions for lack of concurrency")
end=s.index("  # Authy's callbacks answered 401")
fns=re.findall(r"\n  (\w+Function):\n    Type: AWS::Serverless::Function\n(    Condition: (\w+)\n)?", s)
fns=[(name, cond) for name,_,cond in fns]
chunks=[fns[k:k+7] for k in range(0,len(fns),7)]
out=["""  # Lambda refused invocations of this stack's functions for lack of concurrency (the
  # account's, or ReservedConcurrency): by FunctionName, so other stacks' throttles never
  # page this on-call. Seven functions an alarm (an alarm's metric math takes ten queries).
"""]
for n,chunk in enumerate(chunks,1):
    metrics=[]
    for k,(name,cond) in enumerate(chunk):
        body=f"""Id: t{k}
            ReturnData: false
            MetricStat:
              Metric:
                Namespace: AWS/Lambda
                MetricName: Throttles
                Dimensions:
                  - Name: FunctionName
                    Value: !Ref {name}
              Period: 300
              Stat: Sum"""
        if cond:
            metrics.append(f"        - !If\n          - {cond}\n          - {body}\n          - !Ref AWS::NoValue")
        else:
            metrics.append("        - "+body.replace("\n  ","\n"))
    out.append(f"""  LambdaThrottlesAlarm{'' if n==1 else n}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: This stack's functions were throttled for 5 minutes ({', '.join(c[0].replace('Function','') for c in chunk)}); the account's concurrency, or ReservedConcurrency, is too low for the traffic.
      ComparisonOperator: GreaterThanThreshold
      Threshold: 0
      EvaluationPeriods: 1
      TreatMissingData: notBreaching
      AlarmActions: [!Ref AlarmTopic]
      OKActions: [!Ref AlarmTopic]
      Metrics:
"""+"\n".join(metrics)+"""
        - Id: throttles
          Label: throttled invocations of this stack's functions
          Expression: SUM(METRICS())
          ReturnData: true

""")
s=s[:start]+"".join(out)+s[end:]
open(p,'w').write(s)
