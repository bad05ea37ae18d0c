-- A cycle is named as the applications service names it, programmes/{programme}/cycles/{cycle},
-- instead of cycles/{programme}-{year} (CHANGELOG.md). The new name is the application's name up
-- to '/applications/'; releases take their cycle's new name from its assignments, before those
-- are renamed.
UPDATE releases
   SET cycle = (SELECT substr(a.application, 1, instr(a.application, '/applications/') - 1)
                  FROM assignments a
                 WHERE a.cycle = releases.cycle AND instr(a.application, '/applications/') > 0
                 LIMIT 1)
 WHERE cycle LIKE 'cycles/%'
   AND EXISTS (SELECT 1 FROM assignments a
                WHERE a.cycle = releases.cycle AND instr(a.application, '/applications/') > 0);

UPDATE assignments
   SET cycle = substr(application, 1, instr(application, '/applications/') - 1)
 WHERE cycle LIKE 'cycles/%' AND instr(application, '/applications/') > 0;
